"""The torch-free `.pth` reader: exact tensors from real torch files, refusal of pickled code.

Files are written by `torch.save` when torch is installed; the malicious and
damaged files are crafted by hand and need no torch.
"""

import collections
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import zipfile

# torch must be imported before TensorFlow runs any op in this process.
try:
    import torch
except ImportError:  # the reader itself does not need it
    torch = None

import keras
import numpy as np
import pytest

from deeplab_keras import models
from deeplab_keras.convert.torch_pth import TorchCheckpointError
from deeplab_keras.convert.torch_pth import UnsafePickleError
from deeplab_keras.convert.torch_pth import from_torchvision_file
from deeplab_keras.convert.torch_pth import load_torch_state_dict

requires_torch = pytest.mark.skipif(torch is None, reason="needs torch to write real .pth files")
requires_torchvision = pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="needs torchvision")


def _torch_numpy(tensor):
    tensor = tensor.detach()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _sample_state_dict():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                 torch.nn.Linear(5, 6))
    module[1].train()
    module[1](torch.randn(2, 4, 5, 5))  # num_batches_tracked = 1, real running stats
    sd = module.state_dict()
    base = torch.randn(4, 6)
    sd["transposed"] = base.t()  # non-contiguous, stride (1, 6)
    sd["strided_slice"] = base[1:, ::2]  # offset 6, stride (6, 2)
    sd["shared_view"] = sd["0.weight"][2]  # shares the conv weight's storage, offset 54
    sd["half"] = torch.randn(3, 2).half()
    sd["bfloat16"] = torch.randn(5).bfloat16()
    sd["int32"] = torch.arange(7, dtype=torch.int32)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(2.5, dtype=torch.float64)
    sd["empty"] = torch.zeros(0, 3)
    return sd


@requires_torch
def test_real_torch_files_are_read_exactly(tmp_path):
    sd = _sample_state_dict()
    path = tmp_path / "weights.pth"
    torch.save(sd, path)
    loaded = load_torch_state_dict(path)
    assert list(loaded) == list(sd)
    for name, tensor in sd.items():
        expected = _torch_numpy(tensor)
        assert loaded[name].dtype == expected.dtype, name
        assert loaded[name].shape == expected.shape, name
        np.testing.assert_array_equal(loaded[name], expected, err_msg=name)
        assert type(loaded[name]) is np.ndarray and loaded[name].flags.writeable
    counter = loaded["1.num_batches_tracked"]
    assert counter.dtype == np.int64 and counter.shape == () and counter == 1
    assert loaded["bfloat16"].dtype == np.float32
    # The shared view is a copy: changing it leaves the conv weight alone.
    loaded["shared_view"][...] = 0
    assert np.abs(loaded["0.weight"][2]).max() > 0


@requires_torch
def test_reader_needs_no_torch_and_matches_weights_only_torch_load(tmp_path, monkeypatch):
    sd = _sample_state_dict()
    path = tmp_path / "weights.pt"
    torch.save(sd, path)
    via_torch = load_torch_state_dict(path, use_torch=True)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    without_torch = load_torch_state_dict(path)
    assert list(without_torch) == list(via_torch)
    for name in via_torch:
        np.testing.assert_array_equal(without_torch[name], via_torch[name], err_msg=name)


@requires_torch
def test_checkpoint_wrappers_are_unwrapped(tmp_path):
    sd = _sample_state_dict()
    for key in ("model", "state_dict"):
        path = tmp_path / f"{key}.pth"
        torch.save({key: sd, "epoch": 3, "optimizer_name": "sgd"}, path)
        loaded = load_torch_state_dict(path)
        assert list(loaded) == list(sd)
    path = tmp_path / "other.pth"
    torch.save({"epoch": 3, "weights": [1, 2]}, path)
    with pytest.raises(TorchCheckpointError, match="'epoch'.*not a state dict"):
        load_torch_state_dict(path)


@requires_torch
def test_legacy_format_files_are_read_exactly(tmp_path):
    """torch.save(..., _use_new_zipfile_serialization=False): the pre-1.6 format that
    torchvision's DeepLabV3-ResNet101 file is in."""
    sd = _sample_state_dict()
    path = tmp_path / "legacy.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    loaded = load_torch_state_dict(path)
    assert list(loaded) == list(sd)
    for name, tensor in sd.items():
        expected = _torch_numpy(tensor)
        assert loaded[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(loaded[name], expected, err_msg=name)
    via_torch = load_torch_state_dict(path, use_torch=True)
    for name in via_torch:
        np.testing.assert_array_equal(loaded[name], via_torch[name], err_msg=name)
    raw = path.read_bytes()
    for cut in (30, len(raw) // 2, len(raw) - 7):
        cut_path = tmp_path / f"legacy_cut{cut}.pth"
        cut_path.write_bytes(raw[:cut])
        with pytest.raises(TorchCheckpointError, match="truncated|legacy"):
            load_torch_state_dict(cut_path)


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Evaluates:
    def __reduce__(self):
        import builtins

        return builtins.eval, ("__import__('os').getpid()",)


def _torch_like_zip(path, payload):
    """A zip laid out like torch.save's, with `payload` pickled as data.pkl."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    # Hidden inside an ordinary-looking state dict.
    _torch_like_zip(path, collections.OrderedDict(
        [("conv.weight", 1.0), ("conv.bias", _RunsShell(f"touch {marker}"))]))
    with pytest.raises(UnsafePickleError) as info:
        load_torch_state_dict(path)
    message = str(info.value)
    assert str(path) in message and "system" in message and os.system.__module__ in message
    assert not marker.exists()
    _torch_like_zip(path, _Evaluates())
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        load_torch_state_dict(path)
    assert isinstance(info.value, pickle.UnpicklingError)
    # BUILD on the reader's own objects (here a storage type) is refused too.
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.PROTO + b"\x02" + pickle.GLOBAL
                         + b"torch\nFloatStorage\n" + pickle.EMPTY_DICT + pickle.BUILD
                         + pickle.STOP)
    with pytest.raises(UnsafePickleError, match="evil.pth.*set the state"):
        load_torch_state_dict(path)


def test_handcrafted_file_without_torch_and_storage_bounds(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    path = tmp_path / "w.pth"
    values = np.arange(5, dtype="<f4")
    _write_handcrafted(path, 5, values.tobytes())
    np.testing.assert_array_equal(load_torch_state_dict(path)["w"], values)
    _write_handcrafted(path, 9, values.tobytes())  # claims 9 floats, holds 5
    with pytest.raises(TorchCheckpointError, match="truncated or corrupt"):
        load_torch_state_dict(path)


def test_handcrafted_legacy_file_without_torch(tmp_path, monkeypatch):
    """The legacy layout (five pickles, then each storage as int64 count + bytes), written
    with pickle opcodes; the same allow-list guards it."""
    monkeypatch.setitem(sys.modules, "torch", None)
    path = tmp_path / "legacy.pth"
    values = np.arange(5, dtype="<f4")
    _write_handcrafted_legacy(path, 5, values)
    np.testing.assert_array_equal(load_torch_state_dict(path)["w"], values)
    _write_handcrafted_legacy(path, 5, values[:3])  # the file ends early
    with pytest.raises(TorchCheckpointError, match="truncated or corrupt"):
        load_torch_state_dict(path)
    marker = tmp_path / "pwned"
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        pickle.dump(collections.OrderedDict([("w", _RunsShell(f"touch {marker}"))]), f,
                    protocol=2)
    with pytest.raises(UnsafePickleError, match="system"):
        load_torch_state_dict(path)
    assert not marker.exists()


def _write_handcrafted_legacy(path, numel, values):
    body = _handcrafted_pickle(numel, persistent_tail=pickle.NONE)  # + view metadata
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(body)
        pickle.dump(["0"], f, protocol=2)
        f.write(numel.to_bytes(8, "little") + values.astype("<f4").tobytes())


def _write_handcrafted(path, numel, data):
    """Writes a torch-format zip using pickle opcodes directly (no torch classes needed)."""
    body = _handcrafted_pickle(numel)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", body)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", data)
        archive.writestr("archive/version", "3\n")


def _handcrafted_pickle(numel, persistent_tail=b""):
    """`OrderedDict(w=<float tensor of numel>)` as torch pickles it; the persistent id gets
    `persistent_tail` appended (the legacy format's view metadata)."""
    p = pickle
    return b"".join([
        p.PROTO + b"\x02",
        p.GLOBAL + b"collections\nOrderedDict\n", p.EMPTY_TUPLE, p.REDUCE,
        p.MARK,
        p.BINUNICODE + len(b"w").to_bytes(4, "little") + b"w",
        p.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\n",
        p.MARK,
        p.MARK, p.BINUNICODE + (7).to_bytes(4, "little") + b"storage",
        p.GLOBAL + b"torch\nFloatStorage\n",
        p.BINUNICODE + (1).to_bytes(4, "little") + b"0",
        p.BINUNICODE + (3).to_bytes(4, "little") + b"cpu",
        p.BININT + numel.to_bytes(4, "little"), persistent_tail, p.TUPLE, p.BINPERSID,
        p.BININT + (0).to_bytes(4, "little"),
        p.BININT + numel.to_bytes(4, "little"), p.TUPLE1,
        p.BININT + (1).to_bytes(4, "little"), p.TUPLE1,
        p.NEWFALSE,
        p.GLOBAL + b"collections\nOrderedDict\n", p.EMPTY_TUPLE, p.REDUCE,
        p.TUPLE, p.REDUCE,
        p.SETITEMS, p.STOP,
    ])


@requires_torch
def test_damaged_files_are_clear_errors(tmp_path):
    with pytest.raises(TorchCheckpointError, match="does not exist"):
        load_torch_state_dict(tmp_path / "missing.pth")
    good = tmp_path / "good.pth"
    torch.save(_sample_state_dict(), good)
    raw = good.read_bytes()
    for cut in (10, len(raw) // 3, len(raw) // 2, len(raw) - 30):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(raw[:cut])
        with pytest.raises(TorchCheckpointError, match="truncated|damaged"):
            load_torch_state_dict(path)
    # A flipped byte inside the first storage fails zip's CRC check.
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo(next(n for n in archive.namelist() if n.endswith("/data/0")))
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    flipped = bytearray(raw)
    flipped[info.header_offset + 30 + name_len + extra_len + 5] ^= 0xFF
    path = tmp_path / "flipped.pth"
    path.write_bytes(bytes(flipped))
    with pytest.raises(TorchCheckpointError, match="damaged"):
        load_torch_state_dict(path)


# torchvision segfaults when imported after TensorFlow in one process (and conftest has imported
# Keras), so the torchvision reference runs in a child process that never imports TensorFlow.
TORCHVISION_REFERENCE = r"""
import json, os, sys
import numpy as np
import torch, torchvision
from torchvision.models import resnet
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation import deeplabv3
from torchvision.models.segmentation.fcn import FCNHead

out, variant, height, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
if variant == "tiny":
    # torchvision's own parts, narrowed: ResNet-50 layout with one block per stage and
    # widths (4, 8, 16, 32), built by ResNet._make_layer (its dilation rules); DeepLabHead's
    # layers with 16 channels instead of 256.
    net = resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1])
    net.conv1 = torch.nn.Conv2d(3, 8, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1, net.inplanes, net.dilation = torch.nn.BatchNorm2d(8), 8, 1
    net.layer1 = net._make_layer(resnet.Bottleneck, 4, 1)
    net.layer2 = net._make_layer(resnet.Bottleneck, 8, 1, stride=2)
    net.layer3 = net._make_layer(resnet.Bottleneck, 16, 1, stride=2, dilate=True)
    net.layer4 = net._make_layer(resnet.Bottleneck, 32, 1, stride=2, dilate=True)
    backbone = IntermediateLayerGetter(net, {"layer4": "out", "layer3": "aux"})
    head = torch.nn.Sequential(
        deeplabv3.ASPP(128, [12, 24, 36], out_channels=16),
        torch.nn.Conv2d(16, 16, 3, padding=1, bias=False), torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 1))
    model = deeplabv3.DeepLabV3(backbone, head, FCNHead(64, 3))
else:
    model = getattr(torchvision.models.segmentation, f"deeplabv3_{variant}")(
        weights=None, weights_backbone=None, aux_loss=True)
# Random BN affine + statistics from random batches, so activations stay O(1).
for module in model.modules():
    if isinstance(module, torch.nn.BatchNorm2d):
        module.momentum = None
        torch.nn.init.uniform_(module.weight, 0.5, 1.5)
        torch.nn.init.uniform_(module.bias, -0.2, 0.2)
model.train()
with torch.no_grad():
    for _ in range(2):
        model(torch.randn(2, 3, 65, 65))
    model.classifier[4].weight.mul_(0.01)
model.eval()
torch.save(model.state_dict(), os.path.join(out, "deeplabv3.pth"))
torch.save(model.state_dict(), os.path.join(out, "deeplabv3_legacy.pth"),
           _use_new_zipfile_serialization=False)
x = np.random.default_rng(0).uniform(0, 255, (1, height, width, 3)).astype("float32")
mean = np.array([0.485, 0.456, 0.406], "float32")
std = np.array([0.229, 0.224, 0.225], "float32")
x_t = torch.from_numpy(((x / 255.0 - mean) / std).transpose(0, 3, 1, 2).copy())
with torch.no_grad():
    expected = model(x_t)["out"].numpy().transpose(0, 2, 3, 1)
np.save(os.path.join(out, "x.npy"), x)
np.save(os.path.join(out, "expected.npy"), expected)
with open(os.path.join(out, "keys.json"), "w") as f:
    json.dump(list(model.state_dict()), f)
"""


def _torchvision_reference(tmp_path, variant, height, width):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-c", TORCHVISION_REFERENCE, str(tmp_path), variant, str(height),
         str(width)], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "keys.json") as f:
        keys = json.load(f)
    paths = {"zip": tmp_path / "deeplabv3.pth", "legacy": tmp_path / "deeplabv3_legacy.pth"}
    assert zipfile.is_zipfile(paths["zip"]) and not zipfile.is_zipfile(paths["legacy"])
    return paths, np.load(tmp_path / "x.npy"), np.load(tmp_path / "expected.npy"), keys


def _assert_file_conversion_matches(ours, tmp_path, variant, height, width):
    paths, x, expected, keys = _torchvision_reference(tmp_path, variant, height, width)
    for path in paths.values():
        _assert_one_file_matches(ours, path, x, expected, keys)


def _assert_one_file_matches(ours, path, x, expected, keys):
    assert list(load_torch_state_dict(path)) == keys
    report = from_torchvision_file(ours, path)
    skipped = set(report.skipped)
    assert all(k.startswith("aux_classifier.") or k.endswith("num_batches_tracked")
               for k in skipped)
    assert any(k.startswith("aux_classifier.") for k in skipped)
    assert any(k.endswith("num_batches_tracked") for k in skipped)
    assert len(report.mapped) + len(skipped) == len(keys)
    assert len(report.mapped) == len(ours.weights)
    actual = np.asarray(ours(x, training=False))
    assert actual.shape == expected.shape == x.shape[:3] + (expected.shape[-1],)
    assert np.abs(expected).max() > 0.05
    assert np.abs(actual - expected).max() < 1e-3


@requires_torchvision
@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="reader and mapping are backend-independent (the no-torch tests run "
                    "on JAX); JAX's per-shape compilation makes this ~40 s. On JAX run -m parity.")
def test_from_torchvision_file_matches_torchvision_tiny(tmp_path):
    tiny = dict(depths=(1, 1, 1, 1), widths=(4, 8, 16, 32), stem_filters=8)
    ours = models.DeepLabV3(backbone="resnet50_v1_5", output_stride=8, num_classes=3,
                            head="torchvision", aspp_filters=16, backbone_kwargs=tiny)
    _assert_file_conversion_matches(ours, tmp_path, "tiny", 57, 71)


@pytest.mark.parity
@requires_torchvision
@pytest.mark.parametrize("depth", ["50", "101"])
def test_torchvision_files_in_both_formats_load_through_load_model(depth, tmp_path,
                                                                   monkeypatch):
    """torchvision's own deeplabv3_resnet{50,101}(aux_loss=True), saved by torch.save in the
    zip and the legacy format, loaded by the path `dk.load_model` takes for the official
    entries (a test-registered copy whose file:// URL carries the file's own sha256 prefix)."""
    import dataclasses
    import hashlib

    from deeplab_keras.weights import loading
    from deeplab_keras.weights import registry

    paths, x, expected, _ = _torchvision_reference(tmp_path, f"resnet{depth}", 97, 129)
    monkeypatch.setenv("DEEPLAB_KERAS_CACHE", str(tmp_path / "cache"))
    official = registry.get_record(f"deeplabv3_resnet{depth}_coco")
    for torch_format, path in paths.items():
        prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        named = tmp_path / f"deeplabv3_resnet{depth}_coco-{prefix}.pth"
        os.replace(path, named)
        record = dataclasses.replace(official, name=f"tv{depth}_{torch_format}_parity_test",
                                     urls=(named.as_uri(),), sha256_prefix=prefix)
        registry.register(record)
        try:
            model = loading.load_model(record.name)
        finally:
            registry.unregister(record.name)
        actual = np.asarray(model(x, training=False))
        assert actual.shape == expected.shape
        diff = np.abs(actual - expected).max()
        assert diff < 1e-3, torch_format
        # Random weights leave near-ties between the top two classes; the labels must agree
        # wherever the reference's top-2 margin exceeds twice the largest logit difference.
        top2 = np.sort(expected, axis=-1)[..., -2:]
        decided = (top2[..., 1] - top2[..., 0]) > 2 * diff
        assert decided.mean() > 0.99, (torch_format, decided.mean())
        agree = actual.argmax(-1) == expected.argmax(-1)
        assert agree[decided].all(), torch_format
