"""DeepLab v2 Caffe converter: protobuf reader/writer and the layer mapping.

Synthetic caffemodels are written from the BVLC caffe.proto field numbers with
the release's layer names, Caffe layouts ([out, in, kh, kw] kernels, BatchNorm
mean/variance scaled by a moving-average factor, separate Scale layers) and,
for MSC, the `_res075`/`_res05` shared copies; converting them back must
reproduce the source model's outputs. Full-size name coverage: `-m slow`.
"""

import collections
import os

import keras
import numpy as np
import pytest

from deeplab_keras import models
from deeplab_keras.convert import caffe_proto
from deeplab_keras.convert.caffe import expected_caffe_layers
from deeplab_keras.convert.caffe import from_caffemodel
from deeplab_keras.convert.caffe_files import CaffeModelError
from deeplab_keras.convert.caffe_files import parse_caffemodel
from deeplab_keras.convert.caffe_files import read_caffemodel
from deeplab_keras.convert.caffe_files import read_caffemodel_layers
from deeplab_keras.convert.caffe_files import write_caffemodel
from deeplab_keras.convert.common import ConversionError

# A converter is a numpy mapping onto Keras variables, the same on every backend; building the
# source and target models is what costs time on JAX (a compile per new weight shape), so the
# conversion checks run in the TensorFlow pass. Converted weights load on JAX through
# `tests/test_weights_registry.py` and `tests/test_cross_backend.py`.
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="backend-independent converter; runs in the TF pass")

BN_FACTOR = 999.982  # a typical Caffe moving-average normaliser
TINY_RESNET = dict(backbone="resnet101", aspp="L", num_classes=5,
                   backbone_kwargs=dict(depths=(3, 4, 1, 2), widths=(4, 4, 4, 4), stem_filters=16))
# Widths shared with TINY_RESNET keep JAX's per-shape compilations (initializers, eager ops) few.
TINY_VGG = dict(backbone_kwargs=dict(widths=(4, 4, 4, 4, 4)), hidden_filters=4, num_classes=5)
ASPP_L_RATES = (6, 12, 18, 24)


def _images(seed=0, shape=(1, 33, 45, 3)):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape, name = tuple(v.shape), v.path.rsplit("/", 1)[-1]
        if name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = rng.normal(0, 0.2, shape)
        else:
            value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
        v.assign(value.astype("float32"))


def _calibrate(model, class_convs, target=5.0):
    """Scales the class-score convs so logits are O(1): then a 1e-4 tolerance tests the
    mapping, not float32 rounding of the huge activations random weights produce."""
    scale = target / np.abs(_outputs(model, _images())).max()
    for conv in class_convs:
        conv.kernel.assign(np.asarray(conv.kernel) * scale)
        conv.bias.assign(np.asarray(conv.bias) * scale)


def _conv_blobs(layer):
    blobs = [np.transpose(np.asarray(layer.kernel), (3, 2, 0, 1))]  # HWIO -> OIHW
    if layer.bias is not None:
        blobs.append(np.asarray(layer.bias))
    return blobs


def _unit_label(unit, depth):
    # The release's prototxt: res2a..c, res3a, res3b1..b3, res4a, res4b1..b22, res5a..c.
    if unit == 0:
        return "a"
    return "abcdefgh"[unit] if depth <= 3 else f"b{unit}"


def resnet_caffe_blobs(net, tag="voc12"):
    """Our DeepLabV2-ResNet's weights as the Caffe release stores them, in prototxt order."""
    out = collections.OrderedDict()
    backbone = net.backbone

    def conv_bn(caffe_suffix, conv_name, bn_name, conv_prefix="res"):
        out[conv_prefix + caffe_suffix] = _conv_blobs(backbone.get_layer(conv_name))
        bn = backbone.get_layer(bn_name)
        out["bn" + ("_" if conv_prefix == "" else "") + caffe_suffix] = [
            np.asarray(bn.moving_mean) * BN_FACTOR, np.asarray(bn.moving_variance) * BN_FACTOR,
            np.array([BN_FACTOR], "float32")]
        out["scale" + ("_" if conv_prefix == "" else "") + caffe_suffix] = [
            np.asarray(bn.gamma), np.asarray(bn.beta)]

    conv_bn("conv1", "conv1_conv", "conv1_bn", conv_prefix="")
    for b, depth in enumerate(backbone.depths):
        stage = b + 2
        for u in range(depth):
            label = _unit_label(u, depth)
            for index, branch in enumerate(("1", "2a", "2b", "2c")):
                if index == 0 and u > 0:
                    continue
                prefix = f"conv{stage}_block{u + 1}_{index}"
                conv_bn(f"{stage}{label}_branch{branch}", prefix + "_conv", prefix + "_bn")
    for i, layers in enumerate(net.get_layer("aspp_v2").branches):
        out[f"fc1_{tag}_c{i}"] = _conv_blobs(layers[0])
    return out


def vgg_caffe_blobs(net, tag="voc12"):
    out = collections.OrderedDict()
    for layer in net.backbone.layers:
        if "_conv" in layer.name:  # block{b}_conv{c}
            b, c = layer.name[5], layer.name[-1]
            out[f"conv{b}_{c}"] = _conv_blobs(layer)
    branches = net.get_layer("aspp_v2").branches
    for i, layers in enumerate(branches):
        suffix = "" if len(branches) == 1 else f"_{i + 1}"
        out[f"fc6{suffix}"] = _conv_blobs(layers[0])
        out[f"fc7{suffix}"] = _conv_blobs(layers[3])
        out[f"fc8_{tag}{suffix}"] = _conv_blobs(layers[6])
    return out


def with_msc_copies(blobs):
    """The MSC training net repeats every layer per scale, sharing the blobs."""
    out = collections.OrderedDict(blobs)
    for suffix in ("_res075", "_res05"):
        for name, value in blobs.items():
            out[name + suffix] = [np.array(a) for a in value]
    return out


def _outputs(model, images):
    return np.asarray(model(images, training=False))


def _assert_every_blob_once(report, blobs, model):
    assert not set(report.mapped) & set(report.skipped)
    per_layer = collections.Counter(k.split("/")[0] for k in [*report.mapped, *report.skipped])
    assert per_layer == collections.Counter({name: len(v) for name, v in blobs.items() if v})
    assert sorted(report.mapped.values()) == sorted(v.path for v in model.weights)


@pytest.fixture(scope="module")
def resnet_pair():
    source, target = models.DeepLabV2(**TINY_RESNET), models.DeepLabV2(**TINY_RESNET)
    _randomize(source, 1)
    _randomize(target, 2)
    _calibrate(source, [b[0] for b in source.get_layer("aspp_v2").branches])
    return source, target


@pytest.fixture(scope="module")
def resnet_blobs(resnet_pair):
    return resnet_caffe_blobs(resnet_pair[0])


# ----------------------------------------------------------------------------- conversion


@pytest.mark.parametrize("msc", [False, True], ids=["single_scale", "msc"])
def test_resnet_aspp_file_reproduces_source_outputs(resnet_pair, resnet_blobs, tmp_path, msc):
    source, target = resnet_pair
    _randomize(target, 2)
    blobs = with_msc_copies(resnet_blobs) if msc else resnet_blobs
    path = write_caffemodel(tmp_path / "train2_iter_20000.caffemodel", blobs,
                            dilations={f"fc1_voc12_c{i}": r for i, r in enumerate(ASPP_L_RATES)})
    images = _images()
    expected = _outputs(source, images)
    assert not np.allclose(_outputs(target, images), expected, atol=1e-2)
    # MSC runs the one wrapped network at every scale, so its outputs follow from the
    # wrapped network's; comparing those keeps the test fast on JAX.
    into = models.MSC(target, scales=(1.0, 0.75, 0.5)) if msc else target
    report = from_caffemodel(into, path)
    actual = _outputs(target, images)
    assert np.abs(expected).max() > 0.1
    assert np.abs(actual - expected).max() < 1e-4
    _assert_every_blob_once(report, blobs, into)
    assert report.mapped["res4a_branch2b/weights"].endswith("conv4_block1_2_conv/kernel")
    assert report.mapped["scale3b3_branch2c/beta"].endswith("conv3_block4_3_bn/beta")
    assert "moving-average" in report.skipped["bn_conv1/factor"]
    assert sorted(expected_caffe_layers(target)) == sorted(resnet_blobs)
    copies = [k for k in report.skipped if "_res0" in k]
    assert len(copies) == (2 * sum(len(v) for v in resnet_blobs.values()) if msc else 0)


@pytest.mark.parametrize("aspp,v1,legacy_dims,packed", [
    ("LargeFOV", True, True, True),     # DeepLab v1-era file: V1 `layers`, 4-D dims
    ("L", False, False, False),         # v2 file, unpacked floats
])
def test_vgg_files_reproduce_source_outputs(tmp_path, aspp, v1, legacy_dims, packed):
    build = (lambda: models.DeepLabV1(**TINY_VGG)) if aspp == "LargeFOV" else (
        lambda: models.DeepLabV2(backbone="vgg16", aspp=aspp, **TINY_VGG))
    source, target = build(), build()
    _randomize(source, 3)
    _randomize(target, 4)
    _calibrate(source, [b[6] for b in source.get_layer("aspp_v2").branches])
    blobs = vgg_caffe_blobs(source)
    path = write_caffemodel(tmp_path / "vgg.caffemodel", blobs, v1=v1, legacy_dims=legacy_dims,
                            packed=packed)
    report = from_caffemodel(target, path)
    images = _images(1)
    expected = _outputs(source, images)
    assert np.abs(expected).max() > 0.1
    assert np.abs(_outputs(target, images) - expected).max() < 1e-4
    _assert_every_blob_once(report, blobs, target)
    assert not report.skipped
    expected_head = {"fc6", "fc7", "fc8_voc12"} if aspp == "LargeFOV" else {
        f"fc{k}_{i}" for k in ("6", "7", "8_voc12") for i in range(1, 5)}
    assert expected_head <= set(blobs)


def test_skip_classifier_keeps_everything_else(resnet_pair, resnet_blobs):
    source = resnet_pair[0]
    target = models.DeepLabV2(**{**TINY_RESNET, "num_classes": 3})
    head = target.get_layer("aspp_v2").branches[0][0]
    head_before = np.asarray(head.kernel).copy()
    report = from_caffemodel(target, resnet_blobs, skip_classifier=True)
    np.testing.assert_array_equal(np.asarray(head.kernel), head_before)
    assert "fc1_voc12_c3/bias" in report.skipped
    for name in ("conv4_block1_2_conv", "conv5_block2_3_conv"):
        np.testing.assert_array_equal(np.asarray(target.backbone.get_layer(name).kernel),
                                      np.asarray(source.backbone.get_layer(name).kernel))
    with pytest.raises(ConversionError, match="shape mismatch.*fc1_voc12_c0"):
        from_caffemodel(target, resnet_blobs)


def test_missing_layer_is_named_and_nothing_changes(resnet_pair, resnet_blobs):
    target = resnet_pair[1]
    before = [np.asarray(v).copy() for v in target.weights]
    blobs = collections.OrderedDict(resnet_blobs)
    del blobs["bn3b1_branch2a"]
    with pytest.raises(ConversionError, match="bn3b1_branch2a"):
        from_caffemodel(target, blobs)
    assert all(np.array_equal(a, np.asarray(v)) for a, v in zip(before, target.weights))


def test_shape_mismatch_and_unknown_layers(resnet_pair, resnet_blobs):
    target = resnet_pair[1]
    blobs = collections.OrderedDict(resnet_blobs)
    blobs["res2b_branch2b"] = [np.zeros((4, 4, 1, 1), "float32")]
    with pytest.raises(ConversionError, match=r"shape mismatch for res2b_branch2b/weights"):
        from_caffemodel(target, blobs)
    blobs = collections.OrderedDict(resnet_blobs, fc9_extra=[np.zeros((5, 5, 1, 1), "float32")])
    with pytest.raises(ConversionError, match="fc9_extra"):
        from_caffemodel(target, blobs)
    blobs = collections.OrderedDict(resnet_blobs)
    blobs["bn_conv1"] = blobs["bn_conv1"][:2]
    with pytest.raises(ConversionError, match="bn_conv1.*3"):
        from_caffemodel(target, blobs)


def test_atrous_rates_in_the_file_are_checked(resnet_pair, resnet_blobs, tmp_path):
    aspp_s = {f"fc1_voc12_c{i}": r for i, r in enumerate((2, 4, 8, 12))}
    path = write_caffemodel(tmp_path / "aspp_s.caffemodel", resnet_blobs, dilations=aspp_s)
    with pytest.raises(ConversionError, match="rate-2 .*aspp='L'"):
        from_caffemodel(resnet_pair[1], path)


def test_msc_copies_must_be_identical(resnet_pair, resnet_blobs):
    blobs = with_msc_copies(resnet_blobs)
    blobs["res2a_branch2a_res075"] = [blobs["res2a_branch2a"][0] + 1]
    with pytest.raises(ConversionError, match="res2a_branch2a_res075.*differ"):
        from_caffemodel(resnet_pair[1], blobs)


def test_wrong_model_or_wrong_network_is_a_clear_error(resnet_pair, resnet_blobs):
    with pytest.raises(ConversionError, match="DeepLabV1/DeepLabV2"):
        from_caffemodel(resnet_pair[1].backbone, resnet_blobs)
    vgg = models.DeepLabV1(**TINY_VGG)
    with pytest.raises(ConversionError, match="DeepLab v2 ResNet"):
        from_caffemodel(vgg, resnet_blobs)


# ----------------------------------------------------------------------------- reader/writer


def _reader_layers():
    rng = np.random.default_rng(0)
    return collections.OrderedDict([
        ("conv1_1", [rng.normal(size=(4, 3, 3, 3)).astype("float32"),
                     rng.normal(size=(4,)).astype("float32")]),
        ("fc8_voc12", [rng.normal(size=(5, 4, 1, 1)).astype("float32"),
                       rng.normal(size=(5,)).astype("float32")]),
        ("pool1", []),
    ])


@pytest.mark.parametrize("v1", [False, True], ids=["layer", "v1_layers"])
@pytest.mark.parametrize("legacy_dims", [False, True], ids=["shape", "legacy_4d"])
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "unpacked"])
def test_reader_round_trip(tmp_path, v1, legacy_dims, packed):
    layers = _reader_layers()
    types = {"pool1": "Pooling"}
    path = write_caffemodel(tmp_path / "net.caffemodel", layers, layer_type=types, v1=v1,
                            legacy_dims=legacy_dims, packed=packed, net_name="tiny")
    got = read_caffemodel(path)
    assert list(got) == ["conv1_1", "fc8_voc12"]  # layers without blobs are left out
    for name, blobs in got.items():
        for actual, expected in zip(blobs, layers[name]):
            want_shape = (1,) * (4 - expected.ndim) + expected.shape if legacy_dims else \
                expected.shape
            assert actual.shape == want_shape and actual.dtype == np.float32
            np.testing.assert_array_equal(actual.reshape(expected.shape), expected)
    records = read_caffemodel_layers(path)
    assert [(r.name, r.type) for r in records] == [
        ("conv1_1", "Convolution"), ("fc8_voc12", "Convolution"), ("pool1", "Pooling")]
    assert not os.path.exists(str(path) + ".tmp") and len(os.listdir(tmp_path)) == 1


def test_reader_double_data_unpacked_runs_and_bn_layers(tmp_path):
    values = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    blob_double = caffe_proto.encode_blob(values, double=True, packed=False)
    # Unpacked floats followed by the shape field: the run must stop at the next field.
    floats = np.array([1.5, -2.0, 3.25], "float32")
    unpacked = caffe_proto.encode_blob(floats, packed=False)
    shape_field = caffe_proto._len_field(caffe_proto.BLOB_SHAPE, caffe_proto._len_field(
        caffe_proto.SHAPE_DIM, bytes([3])))
    data_only = unpacked[len(shape_field):]
    assert unpacked.startswith(shape_field)
    layer = (caffe_proto._len_field(caffe_proto.LAYER_NAME, b"bn_x")
             + caffe_proto._len_field(caffe_proto.LAYER_TYPE, b"BatchNorm")
             + caffe_proto._len_field(caffe_proto.LAYER_BLOBS, blob_double)
             + caffe_proto._len_field(caffe_proto.LAYER_BLOBS, data_only + shape_field))
    path = tmp_path / "double.caffemodel"
    path.write_bytes(caffe_proto._len_field(caffe_proto.NET_LAYER, layer))
    (record,) = read_caffemodel_layers(path)
    assert record.type == "BatchNorm"
    np.testing.assert_array_equal(record.blobs[0], values)
    assert record.blobs[0].dtype == np.float64
    np.testing.assert_array_equal(record.blobs[1], floats)


def test_writer_matches_the_protobuf_library(tmp_path):
    """Our bytes parse with Google's protobuf runtime and a descriptor of the BVLC fields."""
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2
    from google.protobuf import descriptor_pool
    from google.protobuf import message_factory

    f = descriptor_pb2.FileDescriptorProto(name="caffe_subset.proto", package="caffe_subset",
                                           syntax="proto2")
    T = descriptor_pb2.FieldDescriptorProto
    opt, rep = T.LABEL_OPTIONAL, T.LABEL_REPEATED

    def message(name, fields):
        m = f.message_type.add(name=name)
        for field_name, number, label, type_, type_name, packed in fields:
            fd = m.field.add(name=field_name, number=number, label=label, type=type_)
            if type_name:
                fd.type_name = ".caffe_subset." + type_name
            if packed:
                fd.options.packed = True

    message("BlobShape", [("dim", 1, rep, T.TYPE_INT64, None, True)])
    message("BlobProto", [("shape", 7, opt, T.TYPE_MESSAGE, "BlobShape", False),
                          ("data", 5, rep, T.TYPE_FLOAT, None, True),
                          ("num", 1, opt, T.TYPE_INT64, None, False),
                          ("channels", 2, opt, T.TYPE_INT64, None, False),
                          ("height", 3, opt, T.TYPE_INT64, None, False),
                          ("width", 4, opt, T.TYPE_INT64, None, False)])
    message("LayerParameter", [("name", 1, opt, T.TYPE_STRING, None, False),
                               ("type", 2, opt, T.TYPE_STRING, None, False),
                               ("blobs", 7, rep, T.TYPE_MESSAGE, "BlobProto", False)])
    message("NetParameter", [("name", 1, opt, T.TYPE_STRING, None, False),
                             ("layer", 100, rep, T.TYPE_MESSAGE, "LayerParameter", False)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    net_cls = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("caffe_subset.NetParameter"))

    layers = _reader_layers()
    path = write_caffemodel(tmp_path / "a.caffemodel", layers, net_name="tiny")
    with open(path, "rb") as fh:
        net = net_cls.FromString(fh.read())
    assert net.name == "tiny" and [layer.name for layer in net.layer] == list(layers)
    blob = net.layer[0].blobs[0]
    assert tuple(blob.shape.dim) == (4, 3, 3, 3)
    np.testing.assert_array_equal(np.array(blob.data, "float32"), layers["conv1_1"][0].ravel())
    # And the other way: the library's serialisation (legacy dims) reads back with ours.
    bias = net.layer[1].blobs[1]
    bias.ClearField("shape")
    bias.num, bias.channels, bias.height, bias.width = 1, 1, 1, 5
    other = tmp_path / "b.caffemodel"
    other.write_bytes(net.SerializeToString())
    got = read_caffemodel(other)
    assert got["fc8_voc12"][1].shape == (1, 1, 1, 5)
    np.testing.assert_array_equal(got["fc8_voc12"][1].ravel(), layers["fc8_voc12"][1])
    np.testing.assert_array_equal(got["conv1_1"][0], layers["conv1_1"][0])


@pytest.mark.parametrize("cut", ["last_byte", "middle", "head"])
def test_truncated_file_is_a_clear_error(tmp_path, cut):
    path = write_caffemodel(tmp_path / "model.caffemodel", _reader_layers())
    data = open(path, "rb").read()
    size = {"last_byte": len(data) - 1, "middle": len(data) // 2, "head": 3}[cut]
    bad = tmp_path / f"cut_{cut}.caffemodel"
    bad.write_bytes(data[:size])
    with pytest.raises(CaffeModelError, match=f"{bad.name}.*truncated"):
        read_caffemodel(bad)
    with pytest.raises(CaffeModelError, match="model.zip:x.caffemodel.*truncated"):
        parse_caffemodel(data[:size], source="model.zip:x.caffemodel")
    assert [layer.name for layer in parse_caffemodel(data)] == list(_reader_layers())


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b'name: "DeepLab"\nlayer {\n  name: "conv1"\n}\n', "prototxt"),
    (b"PK\x03\x04" + bytes(60), "zip archive"),
    (bytes(np.random.default_rng(5).integers(0, 256, 4000, dtype=np.uint8)), "caffemodel"),
])
def test_not_a_caffemodel_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "weights.caffemodel"
    path.write_bytes(content)
    with pytest.raises(CaffeModelError, match=f"weights.caffemodel.*{message}"):
        read_caffemodel(path)


# ----------------------------------------------------------------------------- full size


def _release_resnet101_names(tag="voc12"):
    """The layer names of the release's deploy.prototxt, written out independently."""
    units = {2: ["a", "b", "c"], 3: ["a", "b1", "b2", "b3"],
             4: ["a"] + [f"b{i}" for i in range(1, 23)], 5: ["a", "b", "c"]}
    names = ["conv1", "bn_conv1", "scale_conv1"]
    for stage, labels in units.items():
        for label in labels:
            for branch in (["1"] if label == "a" else []) + ["2a", "2b", "2c"]:
                names += [f"{p}{stage}{label}_branch{branch}" for p in ("res", "bn", "scale")]
    return names + [f"fc1_{tag}_c{i}" for i in range(4)]


@pytest.mark.slow
def test_full_size_resnet101_msc_name_coverage():
    model = models.MSC(models.DeepLabV2(backbone="resnet101", aspp="L", num_classes=21))
    blobs = resnet_caffe_blobs(model.model)
    assert sorted(blobs) == sorted(_release_resnet101_names())
    assert sorted(expected_caffe_layers(model)) == sorted(_release_resnet101_names())
    assert len(blobs) == 316
    blobs = with_msc_copies(blobs)
    report = from_caffemodel(model, blobs)
    _assert_every_blob_once(report, blobs, model)
    assert len(report.mapped) == len(model.weights) == 104 + 104 * 4 + 8
    assert blobs["fc1_voc12_c2"][0].shape == (21, 2048, 3, 3)


@pytest.mark.slow
@pytest.mark.parametrize("aspp", ["LargeFOV", "L"])
def test_full_size_vgg16_name_coverage(aspp):
    model = models.DeepLabV2(backbone="vgg16", aspp=aspp, num_classes=21)
    blobs = vgg_caffe_blobs(model)
    convs = [f"conv{b}_{c}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3)) for c in range(1, n + 1)]
    head = ["fc6", "fc7", "fc8_voc12"] if aspp == "LargeFOV" else [
        f"{k}_{i}" for i in range(1, 5) for k in ("fc6", "fc7", "fc8_voc12")]
    assert sorted(blobs) == sorted(convs + head)
    assert sorted(expected_caffe_layers(model)) == sorted(convs + head)
    report = from_caffemodel(model, blobs)
    _assert_every_blob_once(report, blobs, model)
    assert blobs[head[0]][0].shape == (1024, 512, 3, 3)
