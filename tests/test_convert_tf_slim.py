"""TF research/deeplab checkpoints (TF1, TF-slim names) -> our Xception-65 / MobileNetV2 models.

The checkpoints are written by TensorFlow's own v1 `Saver` under the names
research/deeplab gives its variables (`core/xception.py`, slim
`mobilenet_v2.py`, `model.py`), holding a source model's random weights; the
converted model must reproduce the source model's outputs. The name lists below
are generated from those files' structure, independently of the converter.
"""

import os
import sys

import keras
import numpy as np
import pytest

from deeplab_keras import models
from deeplab_keras.convert.common import ConversionError
from deeplab_keras.convert.tf_slim import from_tf_checkpoint
from deeplab_keras.convert.tf_slim import read_tf_checkpoint

# A converter is a numpy mapping onto Keras variables, the same on every backend; building the
# source and target models is what costs time on JAX (a compile per new weight shape), so the
# conversion checks run in the TensorFlow pass. Converted weights load on JAX through
# `tests/test_weights_registry.py` and `tests/test_cross_backend.py`.
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="backend-independent converter; runs in the TF pass")

BN_FIELDS = ("gamma", "beta", "moving_mean", "moving_variance")
XCEPTION_65_BLOCKS = (  # (scope, has a conv shortcut); core/xception.py xception_65
    ("entry_flow/block1", True), ("entry_flow/block2", True), ("entry_flow/block3", True),
    ("middle_flow/block1", False), ("exit_flow/block1", True), ("exit_flow/block2", False),
)
# The tiny widths of test_backbones_xception_mobilenet.py: on JAX, shapes already compiled there
# are reused.
TINY_XCEPTION = dict(width_multiplier=1 / 16, middle_units=2)
TINY_MOBILENET = dict(alpha=0.05)


def xception_65_scopes(middle_units):
    """(scope under `xception_65/`, kernel variable name) of every conv."""
    yield "entry_flow/conv1_1", "weights"
    yield "entry_flow/conv1_2", "weights"
    for block, shortcut in XCEPTION_65_BLOCKS:
        units = middle_units if block.startswith("middle") else 1
        for u in range(1, units + 1):
            module = f"{block}/unit_{u}/xception_module"
            for i in (1, 2, 3):
                yield f"{module}/separable_conv{i}_depthwise", "depthwise_weights"
                yield f"{module}/separable_conv{i}_pointwise", "weights"
            if shortcut:
                yield f"{module}/shortcut", "weights"


def mobilenet_v2_scopes():
    """(scope under `MobilenetV2/`, kernel variable name), slim mobilenet_v2 V2_DEF to layer_18."""
    yield "Conv", "weights"
    yield "expanded_conv/depthwise", "depthwise_weights"
    yield "expanded_conv/project", "weights"
    for i in range(1, 17):
        yield f"expanded_conv_{i}/expand", "weights"
        yield f"expanded_conv_{i}/depthwise", "depthwise_weights"
        yield f"expanded_conv_{i}/project", "weights"


def _conv_bn_tensors(scope, kernel_name, conv, bn):
    out = {f"{scope}/{kernel_name}": conv.weights[0]}
    out.update({f"{scope}/BatchNorm/{f}": getattr(bn, f) for f in BN_FIELDS})
    return out


def _conv_bn_block(scope, block):
    """A ConvBN: plain (`scope`) or split separable (`scope_depthwise`, `scope_pointwise`)."""
    if block.depthwise is not None:
        out = _conv_bn_tensors(scope + "_depthwise", "depthwise_weights", block.depthwise,
                               block.depthwise_bn)
        out.update(_conv_bn_tensors(scope + "_pointwise", "weights", block.conv, block.bn))
        return out
    return _conv_bn_tensors(scope, "weights", block.conv, block.bn)


def tf_slim_variables(model):
    """{TF-slim name: our variable} for a DeepLab model, as research/deeplab names them."""
    backbone = model.backbone
    if type(backbone).__name__ == "XceptionBackbone":
        prefix, scopes = "xception_65", xception_65_scopes(backbone.middle_units)
    else:
        prefix, scopes = "MobilenetV2", mobilenet_v2_scopes()
    names = {}
    for scope, kernel in scopes:
        layer = scope.replace("/", "_")
        names.update(_conv_bn_tensors(f"{prefix}/{scope}", kernel, backbone.get_layer(layer),
                                      backbone.get_layer(layer + "_BatchNorm")))
    aspp = model.get_layer("aspp")
    names.update(_conv_bn_block("image_pooling", aspp.pooling_conv))
    names.update(_conv_bn_block("aspp0", aspp.conv_1x1))
    for i, branch in enumerate(aspp.atrous_branches, 1):
        names.update(_conv_bn_block(f"aspp{i}", branch))
    names.update(_conv_bn_block("concat_projection", aspp.projection))
    if "decoder" in [layer.name for layer in model.layers]:
        decoder = model.get_layer("decoder")
        names.update(_conv_bn_block("decoder/feature_projection0", decoder.low_level_projection))
        if decoder.separable:
            names.update(_conv_bn_block("decoder/decoder_conv0", decoder.conv1))
            names.update(_conv_bn_block("decoder/decoder_conv1", decoder.conv2))
        else:  # slim.repeat(..., 2, slim.conv2d, scope="decoder_conv0")
            names.update(_conv_bn_block("decoder/decoder_conv0/decoder_conv0_1", decoder.conv1))
            names.update(_conv_bn_block("decoder/decoder_conv0/decoder_conv0_2", decoder.conv2))
    classifier = model.get_layer("classifier")
    names["logits/semantic/weights"] = classifier.kernel
    names["logits/semantic/biases"] = classifier.bias
    return names


def randomize(model, seed):
    """Random weights and BN statistics, so every tensor changes the output."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape, name = tuple(v.shape), v.name
        if name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = rng.normal(0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[:-1])) if name == "kernel" else int(np.prod(shape[:2]))
            value = rng.normal(0, np.sqrt(2.0 / max(fan_in, 1)), shape)
        v.assign(value.astype("float32"))


def checkpoint_values(model, extra=True):
    values = {name: np.asarray(v) for name, v in tf_slim_variables(model).items()}
    if extra:
        values["global_step"] = np.array(30000, np.int64)
        values["logits/semantic/weights/Momentum"] = np.zeros_like(
            values["logits/semantic/weights"])
    return values


def write_tf1_checkpoint(values, prefix):
    """Saves `values` with TensorFlow's v1 Saver, as research/deeplab's train.py did."""
    tf = pytest.importorskip("tensorflow")
    graph = tf.compat.v1.Graph()
    with graph.as_default():
        for name, value in values.items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, str(prefix), write_meta_graph=False)


def tiny_xception_v3plus(pooling_first=True, separable=True):
    return models.DeepLabV3Plus(backbone="xception65", num_classes=5, aspp_filters=8,
                                separable=separable, pooling_first=pooling_first,
                                decoder_filters=8, low_level_filters=4, align_corners=True,
                                bn_epsilon=1e-5, backbone_kwargs=TINY_XCEPTION)


def tiny_mobilenet_v3(pooling_first=True, aspp_rates=()):
    return models.DeepLabV3(backbone="mobilenetv2", num_classes=5, aspp_filters=8,
                            aspp_rates=aspp_rates, pooling_first=pooling_first,
                            mean=(127.5,) * 3, std=(127.5,) * 3,
                            backbone_kwargs=TINY_MOBILENET)


def images(seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (2, 49, 57, 3)).astype("float32")


def _assert_converts_exactly(source, target, tmp_path, location="prefix"):
    randomize(source, 1)
    randomize(target, 2)
    values = checkpoint_values(source)
    prefix = write_tf1_checkpoint(values, tmp_path / "model.ckpt")
    x = images()
    expected = np.asarray(source(x, training=False))
    before = np.asarray(target(x, training=False))
    # The prefix, its .index file or the directory a model-zoo tarball extracts to.
    checkpoint = {"prefix": prefix, "index": prefix + ".index", "directory": tmp_path}[location]
    report = from_tf_checkpoint(target, checkpoint)
    assert set(report.skipped) == {"global_step", "logits/semantic/weights/Momentum"}
    assert set(report.mapped) == set(values) - set(report.skipped)
    assert len(report.mapped) == len(target.weights)
    assert sorted(report.mapped.values()) == sorted(v.path for v in target.weights)
    actual = np.asarray(target(x, training=False))
    assert np.abs(before - expected).max() > 1e-2  # the test can fail
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)
    return report


@pytest.mark.requires_tf
def test_xception65_v3plus_tf1_checkpoint_reproduces_outputs(tmp_path):
    source = tiny_xception_v3plus()
    target = tiny_xception_v3plus()
    report = _assert_converts_exactly(source, target, tmp_path)
    assert report.mapped["xception_65/entry_flow/block1/unit_1/xception_module/"
                          "separable_conv1_depthwise/depthwise_weights"] == (
        "entry_flow_block1_unit_1_xception_module_separable_conv1_depthwise/depthwise_kernel")
    assert "decoder/decoder_conv1_pointwise/BatchNorm/moving_variance" in report.mapped
    assert "aspp3_depthwise/BatchNorm/gamma" in report.mapped


@pytest.mark.requires_tf
def test_mobilenetv2_v3_tf1_checkpoint_reproduces_outputs(tmp_path):
    report = _assert_converts_exactly(tiny_mobilenet_v3(), tiny_mobilenet_v3(), tmp_path,
                                      location="directory")
    assert sorted(read_tf_checkpoint(tmp_path / "model.ckpt.index")) == sorted(
        list(report.mapped) + list(report.skipped))
    assert "MobilenetV2/expanded_conv_16/project/BatchNorm/beta" in report.mapped
    assert not any(name.startswith(("aspp1", "decoder/")) for name in report.mapped)


@pytest.mark.requires_tf
def test_missing_or_truncated_checkpoint_is_a_clear_error(tmp_path):
    model = tiny_mobilenet_v3()
    with pytest.raises(ConversionError, match="No TF checkpoint"):
        from_tf_checkpoint(model, tmp_path / "nothing" / "model.ckpt")
    prefix = write_tf1_checkpoint(checkpoint_values(model), tmp_path / "model.ckpt")
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(ConversionError, match="model.ckpt"):
        from_tf_checkpoint(model, prefix)


def test_pooling_last_model_gets_the_projection_reordered():
    """TF concatenates image pooling first; pooling_first=False must still match exactly."""
    source, target = tiny_mobilenet_v3(pooling_first=True), tiny_mobilenet_v3(pooling_first=False)
    randomize(source, 1)
    randomize(target, 2)
    report = from_tf_checkpoint(target, checkpoint_values(source))
    assert len(report.mapped) == len(target.weights)
    x = images()
    np.testing.assert_allclose(np.asarray(target(x, training=False)),
                               np.asarray(source(x, training=False)), atol=1e-5, rtol=0)


def test_plain_decoder_and_aspp_names_convert_without_tensorflow():
    """Non-separable variant (`aspp{i}/weights`, slim.repeat decoder) from a plain mapping."""
    source = tiny_xception_v3plus(separable=False)
    target = tiny_xception_v3plus(separable=False)
    randomize(source, 3)
    values = checkpoint_values(source)
    assert "decoder/decoder_conv0/decoder_conv0_2/weights" in values
    report = from_tf_checkpoint(target, values)
    assert len(report.mapped) == len(target.weights) == len(values) - 2
    x = images(1)
    np.testing.assert_allclose(np.asarray(target(x, training=False)),
                               np.asarray(source(x, training=False)), atol=1e-5, rtol=0)


def test_mismatches_are_clear_errors():
    separable, plain = tiny_xception_v3plus(separable=True), tiny_xception_v3plus(separable=False)
    with pytest.raises(ConversionError, match="separable=True"):
        from_tf_checkpoint(plain, checkpoint_values(separable))
    with pytest.raises(ConversionError, match="separable=False"):
        from_tf_checkpoint(separable, checkpoint_values(plain))
    only_pointwise = {k: v for k, v in checkpoint_values(separable).items()
                      if not k.startswith("aspp1_depthwise")}
    with pytest.raises(ConversionError, match="aspp1_pointwise.*separable=True"):
        from_tf_checkpoint(plain, {k: v for k, v in only_pointwise.items()
                                   if k.startswith(("aspp1", "global"))})
    mnv2 = tiny_mobilenet_v3()
    values = checkpoint_values(mnv2)
    with pytest.raises(ConversionError, match="aspp1.*atrous branches"):
        from_tf_checkpoint(mnv2, {**values, "aspp1/weights": np.zeros((3, 3, 16, 8))})
    with pytest.raises(ConversionError, match="no decoder"):
        from_tf_checkpoint(mnv2, {**values,
                                  "decoder/feature_projection0/weights": np.zeros((1, 1, 8, 4))})
    with pytest.raises(ConversionError, match="no layer 'expanded_conv_17_project'"):
        from_tf_checkpoint(mnv2, {**values,
                                  "MobilenetV2/expanded_conv_17/project/weights": np.zeros(1)})
    with pytest.raises(ConversionError, match="Shape mismatch.*logits/semantic/weights"):
        from_tf_checkpoint(mnv2, {**values,
                                  "logits/semantic/weights": np.zeros((1, 1, 8, 21))})
    partial = {k: v for k, v in values.items() if not k.startswith("concat_projection/")}
    with pytest.raises(ConversionError, match="got no value"):
        from_tf_checkpoint(mnv2, partial)
    with pytest.raises(ConversionError, match="Xception-65 or MobileNetV2"):
        tiny = dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4), stem_filters=4)
        from_tf_checkpoint(models.DeepLabV3(backbone="resnet50", num_classes=3, aspp_filters=8,
                                            backbone_kwargs=tiny), values)


def test_without_tensorflow_reading_a_checkpoint_says_so(monkeypatch, tmp_path):
    model = tiny_mobilenet_v3()
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now fails
    with pytest.raises(ImportError, match="needs TensorFlow"):
        from_tf_checkpoint(model, tmp_path / "model.ckpt")


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="the mapping is backend-independent (tested on TF); on JAX building the "
                    "full-size model compiles an initializer per weight shape (~25 s)")
def test_full_size_mobilenetv2_names_and_shapes():
    """The real deeplabv3_mnv2_pascal_train_aug layout: known TF shapes, every name mapped."""
    model = models.DeepLabV3(backbone="mobilenetv2", num_classes=21, aspp_rates=(),
                             pooling_first=True)
    values = checkpoint_values(model)
    expected_shapes = {
        "MobilenetV2/Conv/weights": (3, 3, 3, 32),
        "MobilenetV2/expanded_conv/depthwise/depthwise_weights": (3, 3, 32, 1),
        "MobilenetV2/expanded_conv/project/weights": (1, 1, 32, 16),
        "MobilenetV2/expanded_conv_1/expand/weights": (1, 1, 16, 96),
        "MobilenetV2/expanded_conv_16/project/weights": (1, 1, 960, 320),
        "image_pooling/weights": (1, 1, 320, 256),
        "aspp0/weights": (1, 1, 320, 256),
        "concat_projection/weights": (1, 1, 512, 256),
        "logits/semantic/weights": (1, 1, 256, 21),
    }
    for name, shape in expected_shapes.items():
        assert values[name].shape == shape, name
    report = from_tf_checkpoint(model, values)
    assert len(report.mapped) == len(model.weights) == len(values) - 2


@pytest.mark.slow
def test_full_size_xception65_names_and_shapes():
    """The real deeplabv3_pascal_train_aug layout (Xception-65, separable ASPP and decoder)."""
    model = models.DeepLabV3Plus(backbone="xception65", num_classes=21, separable=True,
                                 pooling_first=True)
    values = checkpoint_values(model)
    expected_shapes = {
        "xception_65/entry_flow/conv1_1/weights": (3, 3, 3, 32),
        "xception_65/entry_flow/block1/unit_1/xception_module/shortcut/weights": (1, 1, 64, 128),
        "xception_65/middle_flow/block1/unit_16/xception_module/separable_conv3_pointwise/"
        "weights": (1, 1, 728, 728),
        "xception_65/exit_flow/block2/unit_1/xception_module/separable_conv3_pointwise/"
        "weights": (1, 1, 1536, 2048),
        "aspp1_depthwise/depthwise_weights": (3, 3, 2048, 1),
        "concat_projection/weights": (1, 1, 1280, 256),
        "decoder/feature_projection0/weights": (1, 1, 256, 48),
        "decoder/decoder_conv0_depthwise/depthwise_weights": (3, 3, 304, 1),
        "logits/semantic/weights": (1, 1, 256, 21),
    }
    for name, shape in expected_shapes.items():
        assert values[name].shape == shape, name
    report = from_tf_checkpoint(model, values)
    assert len(report.mapped) == len(model.weights) == len(values) - 2


def write_model_zoo_tarball(values, path, folder, checkpoint_name, global_step=None):
    """A tarball packed as TF research/deeplab's model zoo packs them: `<folder>/` holding the
    Saver's checkpoint (`checkpoint` file, `<name>.index`, `<name>.data-00000-of-00001`), a
    `frozen_inference_graph.pb`; Momentum slots for every trainable weight and global_step."""
    import tarfile

    tf = pytest.importorskip("tensorflow")
    values = dict(values)
    for name in list(values):
        if not name.endswith(("moving_mean", "moving_variance")) and name != "global_step":
            values[name + "/Momentum"] = np.zeros_like(values[name])
    values["global_step"] = np.array(global_step or 30000, np.int64)
    staging = os.path.join(os.path.dirname(path), "staging")
    os.makedirs(os.path.join(staging, folder))
    graph = tf.compat.v1.Graph()
    with graph.as_default():
        for name, value in values.items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, os.path.join(staging, folder, checkpoint_name),
                       global_step=global_step, write_meta_graph=False)
    with open(os.path.join(staging, folder, "frozen_inference_graph.pb"), "wb") as f:
        f.write(b"graph")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(os.path.join(staging, folder), arcname=folder)
    return values


@pytest.mark.requires_tf
@pytest.mark.parametrize("kind", ["xception65", "mobilenetv2"])
def test_model_zoo_tarball_as_downloaded(kind, tmp_path, monkeypatch):
    """The tarball itself, packed like the real ones, through `from_tf_checkpoint` and through
    the path `dk.load_model` takes (a test-registered copy of the official record)."""
    import dataclasses

    from deeplab_keras.weights import loading
    from deeplab_keras.weights import registry

    build, official, folder, name, step = {
        "xception65": (tiny_xception_v3plus, "deeplabv3plus_xception65_voc",
                       "deeplabv3_pascal_train_aug", "model.ckpt", None),
        "mobilenetv2": (tiny_mobilenet_v3, "deeplabv3_mobilenetv2_voc",
                        "deeplabv3_mnv2_pascal_train_aug", "model.ckpt", 30000),
    }[kind]
    source = build()
    randomize(source, 1)
    tarball = tmp_path / f"{folder}_2018.tar.gz"
    values = write_model_zoo_tarball(checkpoint_values(source, extra=False), str(tarball),
                                     folder, name, step)
    x = images()
    expected = np.asarray(source(x, training=False))
    target = build()
    report = from_tf_checkpoint(target, str(tarball))
    assert set(report.skipped) == {n for n in values if n.endswith("/Momentum")} | {
        "global_step"}
    np.testing.assert_allclose(np.asarray(target(x, training=False)), expected, atol=1e-5)

    member = f"{folder}/{name}" + (f"-{step}" if step else "")
    record = registry.get_record(official)
    tiny = TINY_XCEPTION if kind == "xception65" else TINY_MOBILENET
    arch = {k: v for k, v in source.get_config().items()
            if k not in ("name", "trainable", "dtype", "num_classes", "backbone")}
    arch.update(backbone=kind,
                backbone_kwargs={**tiny, **(record.arch_kwargs.get("backbone_kwargs") or {})})
    test_record = dataclasses.replace(
        record, name=f"{kind}_tarball_test", arch_kwargs=arch, num_classes=5,
        class_names=tuple("abcde"), urls=(tarball.as_uri(),), member=member, num_params=1)
    monkeypatch.setenv("DEEPLAB_KERAS_CACHE", str(tmp_path / "cache"))
    registry.register(test_record)
    try:
        loaded = loading.load_model(test_record.name)
    finally:
        registry.unregister(test_record.name)
    # The record's own geometry (for MobileNetV2: TF's SAME padding) with the source's weights.
    reference = type(source).from_config({**source.get_config(), **arch})
    reference.set_weights(source.get_weights())
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)),
                               np.asarray(reference(x, training=False)), atol=1e-5)
