"""Weights registry, `load_model`, converted-weights cache, ImageNet backbones, model cards.

Every registered record is checked without building (fast); the schema test builds each
registered model once with random weights and checks it against its record (all but the
MobileNetV2 entry are marked `slow`, and on JAX that one too, as is the ImageNet MobileNetV2
parity test: JAX on CPU compiles every initializer shape, 30 s per full-size model; run
`python -m pytest -m slow tests/test_weights_registry.py`). End-to-end loading uses tiny
records whose source files the tests write and serve through file:// URLs.
"""

import copy
import dataclasses
import hashlib
import io
import logging
import os
import pickle
import sys
import tarfile
import zipfile

import keras
import numpy as np
import pytest

import deeplab_keras
from deeplab_keras import models
from deeplab_keras.convert.common import ConversionError
from deeplab_keras.convert.common import ConversionReport
from deeplab_keras.weights import cache as weights_cache
from deeplab_keras.weights import cards
from deeplab_keras.weights import errors
from deeplab_keras.weights import imagenet_backbones
from deeplab_keras.weights import loading
from deeplab_keras.weights import records
from deeplab_keras.weights import registry
from deeplab_keras.weights import specs

pytestmark = pytest.mark.tf_free_host

ISSUE_NAMES = ("deeplab_resnet101_voc", "deeplab_vgg16_largefov_voc", "deeplab_vgg16_aspp_voc",
               "deeplabv3plus_xception65_voc", "deeplabv3plus_xception65_cityscapes",
               "deeplabv3_mobilenetv2_voc", "deeplabv3plus_xception65_ade20k",
               "deeplabv3_resnet101_coco", "deeplabv3_resnet50_coco")
# Built in the default run (the smallest entry); the other eight are `slow` (building a big
# model costs 5-10 s on TF and much more on JAX's CPU, which compiles each initializer shape).
FAST_BUILDS = ("deeplabv3_mobilenetv2_voc",)
# Full-size models: default on TF, `slow` on JAX (30 s each there for initializer compiles).
def heavy_on_jax(test):
    return pytest.mark.slow(test) if keras.backend.backend() == "jax" else test
TINY_RESNET = dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4), stem_filters=4)
# Few distinct weight shapes: cheap to initialise on JAX, which compiles per shape.
TINY_VGG = dict(widths=(4, 4, 4, 4, 4))


# ---------------------------------------------------------------------------------------------
# Records (no model built)


def test_issue_entries_are_registered():
    assert set(ISSUE_NAMES) <= set(registry.list_models())
    assert registry.list_models("deeplabv3plus_*") == [
        "deeplabv3plus_mobilenetv2_camvid", "deeplabv3plus_resnet50w40_camvid",
        "deeplabv3plus_xception65_ade20k",
        "deeplabv3plus_xception65_cityscapes",
        "deeplabv3plus_xception65_voc"]
    assert registry.list_models("*_coco") == ["deeplabv3_resnet101_coco",
                                              "deeplabv3_resnet50_coco"]


@pytest.mark.parametrize("name", ISSUE_NAMES)
def test_record_fields_are_sane(name):
    record = registry.get_record(name)
    specs.validate(record)
    assert len(record.class_names) == record.num_classes
    assert len(set(record.class_names)) == record.num_classes
    palette = record.palette_array()
    assert palette.shape == (record.num_classes, 3) and palette.dtype == np.uint8
    assert record.metrics and all(m.source and m.dataset and m.setting for m in record.metrics)
    assert all(0 < m.value <= 100 for m in record.metrics)
    assert record.urls[0].startswith(("http://", "https://"))
    pre = record.preprocessing
    assert pre.source and len(pre.input_size) == 2
    # The record's preprocessing is what its architecture applies (explicitly or by default).
    for key in ("mean", "std", "channel_order"):
        value = (record.arch_kwargs[key] if key in record.arch_kwargs
                 else _constructor_default(record.architecture, key))
        assert tuple(np.ravel(value)) == tuple(np.ravel(getattr(pre, key))), key
    if record.converter == "torchvision":
        assert record.sha256_prefix and f"-{record.sha256_prefix}.pth" in record.urls[0]
    assert record.tofu == (record.sha256 is None and record.md5 is None)
    assert "record" in record.hash_status or "published" in record.hash_status
    if record.crf is not None:
        assert len(record.crf) == 5 and record.crf_source
    assert pickle.loads(pickle.dumps(record)) == record and hash(record) == hash(
        copy.deepcopy(record))


def test_preprocessing_matches_each_source_convention():
    caffe = registry.get_record("deeplab_resnet101_voc").preprocessing
    assert caffe.channel_order == "bgr" and caffe.mean == (104.008, 116.669, 122.675)
    assert caffe.std == (1.0, 1.0, 1.0)
    tf = registry.get_record("deeplabv3_mobilenetv2_voc").preprocessing
    assert tf.mean == tf.std == (127.5, 127.5, 127.5) and tf.channel_order == "rgb"
    tv = registry.get_record("deeplabv3_resnet50_coco").preprocessing
    np.testing.assert_allclose(np.array(tv.mean) / 255, (0.485, 0.456, 0.406), atol=1e-6)
    np.testing.assert_allclose(np.array(tv.std) / 255, (0.229, 0.224, 0.225), atol=1e-6)


def test_crf_parameters_match_dense_crf_presets():
    from deeplab_keras.crf.params import PRESETS

    assert registry.get_record("deeplab_resnet101_voc").crf == PRESETS["deeplab_resnet101_voc"]
    assert registry.get_record("deeplab_vgg16_aspp_voc").crf == PRESETS["deeplab_vgg16_voc"]
    for camvid in ("deeplabv3plus_mobilenetv2_camvid", "deeplabv3plus_resnet50w40_camvid"):
        assert registry.get_record(camvid).crf == PRESETS[camvid]


def test_imagenet_backbone_records_carry_keras_md5():
    specs = records.BACKBONE_WEIGHTS
    assert specs["resnet101"].md5 == "88cf7a10940856eca736dc7b7e228a21"
    assert specs["resnet50"].md5 == "4d473c1dd8becc155b73f8504c6f6626"
    assert specs["vgg16_largefov"].md5 == "6d6bbae143d832006294945121d1f1fc"
    assert specs["mobilenetv2"].tofu and specs["mobilenetv2"].filename.endswith("_no_top.h5")
    for spec in specs.values():
        assert spec.url.startswith("https://storage.googleapis.com/tensorflow/keras-applications/")


def test_unknown_name_lists_close_names():
    with pytest.raises(ValueError, match="deeplab_resnet101_voc") as info:
        registry.get_record("deeplab_resnet101_vco")
    assert "Did you mean" in str(info.value)
    with pytest.raises(ValueError, match="deeplabv3_resnet50_coco"):
        loading.load_model("deeplabv3_resnet5_coco", weights=False)


def test_validate_rejects_bad_records():
    good = registry.get_record("deeplabv3_resnet50_coco")
    with pytest.raises(ValueError, match="class names"):
        specs.validate(dataclasses.replace(good, num_classes=20))
    with pytest.raises(ValueError, match="sha256_prefix"):
        specs.validate(dataclasses.replace(good, sha256_prefix="deadbeef"))
    with pytest.raises(ValueError, match="tofu"):
        specs.validate(dataclasses.replace(good, tofu=False))
    with pytest.raises(ValueError, match="source"):
        specs.validate(dataclasses.replace(good, metrics=(dataclasses.replace(
            good.metrics[0], source=""),)))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(dataclasses.replace(good, summary="another"))


def test_model_cards_are_up_to_date():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "zoo"))
    try:
        import make_cards
    finally:
        sys.path.pop(0)
    assert make_cards.stale_files() == [], "run `python zoo/make_cards.py`"
    card = cards.model_card("deeplab_resnet101_voc")
    assert "76.35" in card and "(4.0, 67.0, 3.0, 3.0, 1.0)" in card and "bgr" in card


# ---------------------------------------------------------------------------------------------
# Schema: every registered model built with random weights agrees with its record.


def _constructor_default(architecture, key):
    import inspect

    return inspect.signature(getattr(models, architecture).__init__).parameters[key].default


def _check_built_model(name):
    record = registry.get_record(name)
    model = loading.load_model(name, weights=False)
    assert model.weight_record is record
    assert model.output_shape[-1] == record.num_classes
    assert model.count_params() == record.num_params
    norm = imagenet_backbones.normalisation_layer(model)
    assert norm.mean == record.preprocessing.mean
    assert norm.std == record.preprocessing.std
    assert norm.channel_order == record.preprocessing.channel_order
    if record.msc_scales:
        assert isinstance(model, models.MSC) and model.scales == record.msc_scales
    return model


@heavy_on_jax
@pytest.mark.parametrize("name", FAST_BUILDS)
def test_schema_fast_models(name):
    _check_built_model(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ISSUE_NAMES if n not in FAST_BUILDS])
def test_schema_big_models(name):
    _check_built_model(name)


# ---------------------------------------------------------------------------------------------
# End to end with a tiny record and a local source file


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPLAB_KERAS_CACHE", raising=False)
    monkeypatch.delenv("DEEPLAB_KERAS_OFFLINE", raising=False)
    monkeypatch.delenv("DEEPLAB_KERAS_MIRROR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path


def _tiny_record(name, url, **changes):
    base = registry.get_record("deeplab_resnet101_voc")
    fields = dict(
        name=name, summary="tiny test model",
        arch_kwargs=dict(base.arch_kwargs, backbone="vgg16", aspp="L", hidden_filters=8,
                         backbone_kwargs=TINY_VGG),
        num_classes=5, class_names=("a", "b", "c", "d", "e"), urls=(url,),
        file_format="keras-h5", converter="deeplab_keras_h5", member=None, num_params=1)
    fields.update(changes)
    return dataclasses.replace(base, **fields)


@pytest.fixture
def registered(request):
    names = []

    def add(record):
        names.append(record.name)
        return registry.register(record)

    yield add
    for name in names:
        registry.unregister(name)


def _images(h=29, w=35):
    return np.random.default_rng(1).uniform(0, 255, (1, h, w, 3)).astype("float32")


def _outputs(model, images):
    return np.asarray(model(images, training=False))


def _assert_same_weights(model, reference):
    """Same variable paths and values (cheaper than eager forward passes on JAX)."""
    expected = {v.path: v.numpy() for v in reference.weights}
    assert sorted(v.path for v in model.weights) == sorted(expected)
    for v in model.weights:
        np.testing.assert_array_equal(v.numpy(), expected[v.path], err_msg=v.path)


def test_load_model_converts_once_verifies_and_recovers(cache, registered, caplog):
    record = _tiny_record("tiny_v2_msc_test", "file://placeholder")
    source_model = loading.build_from_record(record)
    for v in source_model.weights:  # distinctive values so a missed weight is visible
        v.assign(np.random.default_rng(len(v.path)).normal(size=v.shape).astype(v.dtype))
    src = str(cache / "source.weights.h5")
    weights_cache.write_converted_weights(source_model, src, record)
    registered(dataclasses.replace(record, urls=("file://" + src,)))

    model = loading.load_model("tiny_v2_msc_test")
    _assert_same_weights(model, source_model)
    assert model.weight_record.name == "tiny_v2_msc_test"
    path = weights_cache.converted_path(model.weight_record)
    assert path.startswith(str(cache / "keras_home")) and path.endswith(
        "tiny_v2_msc_test.weights.h5")
    with open(path + ".sha256") as f:
        assert f.read().split()[0] == hashlib.sha256(open(path, "rb").read()).hexdigest()

    # A cache hit converts nothing and fetches nothing.
    def no_fetch(*args, **kwargs):
        raise AssertionError("fetched although the converted file is cached")

    from deeplab_keras.weights import download
    original_fetch = download.fetch
    download.fetch = no_fetch
    try:
        again = loading.load_model("tiny_v2_msc_test")
    finally:
        download.fetch = original_fetch
    _assert_same_weights(again, source_model)

    # One flipped byte is detected, the bad file moved aside, and the weights converted again.
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(path, "wb").write(bytes(data))
    with pytest.raises(errors.WeightsIntegrityError, match="corrupt"):
        weights_cache.verify_converted(path)
    with caplog.at_level(logging.WARNING, logger="deeplab_keras.weights"):
        recovered = loading.load_model("tiny_v2_msc_test")
    assert "corrupt" in caplog.text
    assert any(".corrupt-" in f for f in os.listdir(os.path.dirname(path)))
    weights_cache.verify_converted(path)
    _assert_same_weights(recovered, source_model)


def test_num_classes_override_reinitialises_exactly_the_classifiers(cache, registered, caplog):
    record = _tiny_record("tiny_v2_classes_test", "file://placeholder")
    source_model = loading.build_from_record(record)
    src = str(cache / "source.weights.h5")
    weights_cache.write_converted_weights(source_model, src, record)
    registered(dataclasses.replace(record, urls=("file://" + src,)))

    with caplog.at_level(logging.INFO, logger="deeplab_keras.weights"):
        model = loading.load_model("tiny_v2_classes_test", num_classes=3)
    assert model.output_shape[-1] == 3
    classifier = {f"aspp_v2/fc8_{i}/{w}" for i in range(4) for w in ("kernel", "bias")}
    source = {v.path: v.numpy() for v in source_model.weights}
    changed = set()
    for v in model.weights:
        if v.shape != source[v.path].shape:
            changed.add(v.path)
        else:
            np.testing.assert_array_equal(v.numpy(), source[v.path], err_msg=v.path)
    assert changed == classifier
    assert "re-initialised" in caplog.text and "aspp_v2/fc8_3/kernel" in caplog.text


def test_overrides_that_change_shapes_are_refused(cache, registered):
    record = _tiny_record("tiny_v2_shape_test", "file://placeholder")
    src = str(cache / "source.weights.h5")
    weights_cache.write_converted_weights(loading.build_from_record(record), src, record)
    registered(dataclasses.replace(record, urls=("file://" + src,)))
    wider = dict(TINY_VGG, widths=(4, 4, 4, 4, 8))
    with pytest.raises(ValueError, match="does not fit"):
        loading.load_model("tiny_v2_shape_test", backbone_kwargs=wider)
    with pytest.raises(ValueError, match="weights=False"):
        loading.load_model("tiny_v2_shape_test", backbone_weights="imagenet")


def _fake_converter(calls):
    def convert(model, path, *args, **kwargs):
        calls.append(path)
        for v in model.weights:
            v.assign(np.full(v.shape, 0.25, v.dtype))
        return ConversionReport(mapped={v.path: v.path for v in model.weights})

    return convert


def test_torchvision_source_checks_the_published_sha256_prefix(cache, registered, monkeypatch):
    from deeplab_keras.convert import torch_pth

    pth = cache / "fake.pth"
    pth.write_bytes(b"not really a torch file, the converter is faked here")
    prefix = hashlib.sha256(pth.read_bytes()).hexdigest()[:8]
    named = cache / f"deeplabv3_tiny-{prefix}.pth"
    os.replace(pth, named)
    calls = []
    monkeypatch.setattr(torch_pth, "from_torchvision_file", _fake_converter(calls))
    base = dict(file_format="torch-pth", converter="torchvision")  # converter faked above
    registered(_tiny_record("tiny_tv_test", "file://" + str(named), sha256_prefix=prefix, **base))
    model = loading.load_model("tiny_tv_test")
    assert calls and calls[0].endswith(named.name)
    assert all(np.all(v.numpy() == 0.25) for v in model.weights)

    wrong = cache / "deeplabv3_tiny-00000000.pth"
    wrong.write_bytes(b"other bytes")
    registered(_tiny_record("tiny_tv_bad_test", "file://" + str(wrong),
                            sha256_prefix="00000000", **base))
    with pytest.raises(ValueError, match="does not start with the prefix 00000000"):
        loading.load_model("tiny_tv_bad_test")


def test_caffe_zip_member_is_extracted_for_the_converter(cache, registered, monkeypatch):
    from deeplab_keras.convert import caffe

    zpath = cache / "prototxt_and_model.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("test.prototxt", "name: 'x'")
        z.writestr("train_iter_20000.caffemodel", b"caffemodel bytes")
        z.writestr("init.caffemodel", b"other")
    seen = {}

    def fake(model, path, *args, **kwargs):
        seen["bytes"] = open(path, "rb").read()
        return _fake_converter([])(model, path)

    monkeypatch.setattr(caffe, "from_caffemodel", fake)
    registered(_tiny_record("tiny_caffe_test", "file://" + str(zpath),
                            file_format="caffemodel-zip", converter="caffe",
                            member="train_iter_20000.caffemodel"))
    loading.load_model("tiny_caffe_test")
    assert seen["bytes"] == b"caffemodel bytes"
    registered(_tiny_record("tiny_caffe_missing_test", "file://" + str(zpath),
                            file_format="caffemodel-zip", converter="caffe",
                            member="train2_iter_20000.caffemodel"))
    with pytest.raises(ValueError, match="init.caffemodel"):
        loading.load_model("tiny_caffe_missing_test")


def _caffe_zip(path, payload):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("test.prototxt", "name: 'x'")
        z.writestr("train_iter_20000.caffemodel", payload)


def test_records_sharing_a_file_name_never_share_a_cache_or_mirror_file(
        cache, registered, monkeypatch, tmp_path):
    """The three DeepLab v2 zips are all prototxt_and_model.zip: each record gets its own
    cached file and its own mirror path, whichever is loaded first."""
    from deeplab_keras.convert import caffe

    seen = []

    def fake(model, path, *args, **kwargs):
        seen.append(open(path, "rb").read())
        return _fake_converter([])(model, path)

    monkeypatch.setattr(caffe, "from_caffemodel", fake)
    mirror = tmp_path / "mirror"
    names = ("tiny_caffe_a_test", "tiny_caffe_b_test")
    for name in names:
        (mirror / name).mkdir(parents=True)
        _caffe_zip(mirror / name / "prototxt_and_model.zip", name.encode())
        registered(_tiny_record(name, f"https://example.invalid/{name}/prototxt_and_model.zip",
                                file_format="caffemodel-zip", converter="caffe",
                                member="train_iter_20000.caffemodel"))
    monkeypatch.setenv("DEEPLAB_KERAS_MIRROR", str(mirror))
    monkeypatch.setenv("DEEPLAB_KERAS_OFFLINE", "1")
    for order in (names, names[::-1]):
        seen.clear()
        for name in order:
            loading.load_model(name)
            weights_cache.verify_converted(weights_cache.converted_path(
                registry.get_record(name)))
        assert seen in ([n.encode() for n in order], [])  # converted once, then cached
    downloads = cache / "keras_home" / "deeplab_keras" / "downloads"
    for name in names:
        assert (downloads / name / "prototxt_and_model.zip").read_bytes() != b""
        with zipfile.ZipFile(downloads / name / "prototxt_and_model.zip") as z:
            assert z.read("train_iter_20000.caffemodel") == name.encode()


def test_a_download_that_does_not_convert_is_never_trusted(cache, registered, monkeypatch,
                                                           tmp_path):
    from deeplab_keras.convert import caffe

    calls = []

    def picky(model, path, *args, **kwargs):
        if open(path, "rb").read() != b"good":
            raise ConversionError("not the DeepLab release")
        return _fake_converter(calls)(model, path)

    monkeypatch.setattr(caffe, "from_caffemodel", picky)
    source = tmp_path / "prototxt_and_model.zip"
    _caffe_zip(source, b"bad")
    registered(_tiny_record("tiny_caffe_tofu_test", "file://" + str(source),
                            file_format="caffemodel-zip", converter="caffe",
                            member="train_iter_20000.caffemodel"))
    with pytest.raises(ValueError, match="did not convert.*No hash was recorded.*load_model "
                                         "again"):
        loading.load_model("tiny_caffe_tofu_test")
    folder = cache / "keras_home" / "deeplab_keras" / "downloads" / "tiny_caffe_tofu_test"
    assert not (folder / "prototxt_and_model.zip").exists()
    assert not (folder / "prototxt_and_model.zip.sha256").exists()
    assert any(".corrupt-" in p.name for p in folder.iterdir())
    _caffe_zip(source, b"good")  # the source is fixed: the next call downloads it anew
    loading.load_model("tiny_caffe_tofu_test")
    assert calls and (folder / "prototxt_and_model.zip.sha256").exists()


def test_tf_tarball_checkpoint_is_extracted_for_the_converter(cache, registered, monkeypatch):
    from deeplab_keras.convert import tf_slim

    tpath = cache / "deeplabv3_tiny_2018.tar.gz"
    with tarfile.open(tpath, "w:gz") as tar:
        for member, data in (("train_fine/model.ckpt-1.index", b"index"),
                             ("train_fine/model.ckpt-1.data-00000-of-00001", b"data"),
                             ("train_fine/frozen_inference_graph.pb", b"graph")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    seen = {}

    def fake(model, prefix, *args, **kwargs):
        seen["index"] = open(prefix + ".index", "rb").read()
        seen["data"] = open(prefix + ".data-00000-of-00001", "rb").read()
        seen["graph"] = os.path.exists(os.path.join(os.path.dirname(prefix),
                                                    "frozen_inference_graph.pb"))
        return _fake_converter([])(model, prefix)

    monkeypatch.setattr(tf_slim, "from_tf_checkpoint", fake)
    registered(_tiny_record("tiny_tf_test", "file://" + str(tpath), file_format="tf1-tarball",
                            converter="tf_slim", member="train_fine/model.ckpt-1"))
    loading.load_model("tiny_tf_test")
    assert seen == {"index": b"index", "data": b"data", "graph": False}
    # A wrong member is an error naming the archive's checkpoints, never a guess.
    registered(_tiny_record("tiny_tf_wrong_member_test", "file://" + str(tpath),
                            file_format="tf1-tarball", converter="tf_slim",
                            member="train_fine/model.ckpt"))
    with pytest.raises(ValueError, match=r"model\.ckpt-1"):
        loading.load_model("tiny_tf_wrong_member_test")


# ---------------------------------------------------------------------------------------------
# `.keras` files


def test_keras_file_loads_with_safe_mode(tmp_path):
    model = models.DeepLabV2(backbone="vgg16", aspp="L", num_classes=4, hidden_filters=8,
                             backbone_kwargs=TINY_VGG)
    path = str(tmp_path / "tiny.keras")
    model.save(path)
    loaded = deeplab_keras.weights.loading.load_model(path)
    np.testing.assert_allclose(_outputs(loaded, _images()), _outputs(model, _images()),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="only apply to registry names"):
        loading.load_model(path, num_classes=3)
    with pytest.raises(ValueError, match="only `.keras` files"):
        loading.load_model(str(tmp_path / "weights.h5"))
    with pytest.raises(FileNotFoundError):
        loading.load_model(str(tmp_path / "missing.keras"))


# ---------------------------------------------------------------------------------------------
# ImageNet backbones


@heavy_on_jax
def test_imagenet_mobilenetv2_weights_reproduce_keras_applications(cache, monkeypatch):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    app = keras.applications.MobileNetV2(weights=None, include_top=False,
                                         input_shape=(None, None, 3))
    rng = np.random.default_rng(0)
    for v in app.weights:
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))
        else:
            v.assign((rng.normal(size=v.shape) * 0.1).astype(v.dtype))
    h5 = cache / records.BACKBONE_WEIGHTS["mobilenetv2"].filename
    with h5py.File(h5, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, app)
    monkeypatch.setitem(records.BACKBONE_WEIGHTS, "mobilenetv2", dataclasses.replace(
        records.BACKBONE_WEIGHTS["mobilenetv2"], url="file://" + str(h5)))

    # Output stride 32 is keras.applications' network; 64x64 keeps every strided input even,
    # where keras' fixed (0, 1) padding for dynamic shapes equals TF "SAME".
    model = imagenet_backbones.build_model("deeplabv3", 21, backbone="mobilenetv2",
                                backbone_weights="imagenet", output_stride=32)
    norm = imagenet_backbones.normalisation_layer(model)
    assert norm.mean == (127.5, 127.5, 127.5) and norm.std == (127.5, 127.5, 127.5)
    np.testing.assert_array_equal(model.backbone.get_layer("Conv").kernel.numpy(),
                                  app.get_layer("Conv1").kernel.numpy())
    np.testing.assert_array_equal(
        model.backbone.get_layer("expanded_conv_16_project_BatchNorm").moving_variance.numpy(),
        app.get_layer("block_16_project_BN").moving_variance.numpy())
    if keras.backend.backend() == "tensorflow":  # eager forward passes are slow on JAX's CPU
        x = rng.uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
        reference = keras.Model(app.input, app.get_layer("block_16_project_BN").output)(x)
        ours = model.backbone(x)["high_level"]
        np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), rtol=1e-5,
                                   atol=1e-5)

    with pytest.raises(ValueError, match="normalises with"):
        imagenet_backbones.load_backbone_weights(models.DeepLabV3(backbone="mobilenetv2",
                                                                  num_classes=3))


def test_imagenet_refuses_backbones_without_keras_weights():
    from deeplab_keras import backbones

    with pytest.raises(ValueError, match="stride in the 1x1"):
        imagenet_backbones.imagenet_backbone_key(backbones.resnet50_v1_5(**TINY_RESNET))
    with pytest.raises(ValueError, match="No ImageNet"):
        imagenet_backbones.build_model("deeplabv3plus", 3, backbone="xception65",
                            backbone_weights="imagenet")
    with pytest.raises(ValueError, match="Unknown architecture"):
        imagenet_backbones.build_model("deeplabv9", 3, backbone="resnet50",
                                       backbone_weights="imagenet")


def test_imagenet_build_sets_keras_layout_and_normalisation(monkeypatch):
    calls = []
    monkeypatch.setattr(imagenet_backbones, "load_backbone_weights",
                        lambda model, weights, progress=True: calls.append(weights))
    model = imagenet_backbones.build_model("deeplabv2", 3, backbone="resnet50",
                                           backbone_weights="imagenet", backbone_kwargs=TINY_RESNET)
    assert calls == ["imagenet"]
    assert model.backbone.use_bias and model.backbone.stride_in == "1x1"
    assert model.backbone.bn_epsilon == 1.001e-5
    norm = imagenet_backbones.normalisation_layer(model)
    assert norm.channel_order == "bgr" and norm.mean == (103.939, 116.779, 123.68)
    # A factory name implies the keras-layout backbone of the same depth.
    imagenet_backbones.build_model("deeplabv3_resnet50", 3, backbone_weights="imagenet",
                        backbone_kwargs=TINY_RESNET, aspp_filters=8)
    assert calls == ["imagenet", "imagenet"]
    # Through the registry: an entry's architecture with another backbone, ImageNet weights.
    model = loading.load_model("deeplabv3_resnet50_coco", weights=False, num_classes=4,
                               backbone="resnet50", backbone_kwargs=TINY_RESNET, aspp_filters=8,
                               backbone_weights="imagenet")
    assert calls == ["imagenet"] * 3 and model.output_shape[-1] == 4
    assert model.backbone.stride_in == "1x1" and model.backbone.use_bias
    assert imagenet_backbones.normalisation_layer(model).channel_order == "bgr"
    assert model.get_config()["head"] == "torchvision"
