"""Xception-65 and MobileNetV2 backbones: shapes, sizes, atrous equivalence, config."""

import keras
import numpy as np
import pytest

from deeplab_keras.backbones.mobilenet_v2 import MobileNetV2Backbone
from deeplab_keras.backbones.mobilenet_v2 import mobilenetv2
from deeplab_keras.backbones.xception import XceptionBackbone
from deeplab_keras.backbones.xception import xception65

TINY = {
    "xception65": (xception65, dict(width_multiplier=1 / 16, middle_units=2)),
    "mobilenetv2": (mobilenetv2, dict(alpha=0.05)),  # 8-16 channels
}
# Measured at full size: (total incl. BN moving statistics, trainable).
FULL_PARAMS = {
    "xception65": (38_052_512, 37_867_312),
    # keras.applications MobileNetV2 (3,538,984) minus its 1280-d conv + BN
    # (414,720) and classifier (1,281,000).
    "mobilenetv2": (1_843_264, 1_811_712),
}
HIGH_CHANNELS = {"xception65": 2048, "mobilenetv2": 320}
LOW_CHANNELS = {"xception65": 256, "mobilenetv2": 24}


def _trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def full_size():
    """Full-size backbones at output strides 8, 16 and 32, without weight values.

    Inside `StatelessScope(initialize_variables=False)` variables get shapes
    but no values, which is all shape and size checks need (drawing ~40M
    random weights, compiled per shape under JAX, takes minutes on a small
    CPU). `clear_session` then drops them from Keras' list of variables
    awaiting initialization so that they are never initialized.
    """
    with keras.StatelessScope(initialize_variables=False):
        built = {(name, output_stride): build(output_stride=output_stride)
                 for name, (build, _) in TINY.items() for output_stride in (8, 16, 32)}
    keras.utils.clear_session()
    return lambda name, output_stride: built[(name, output_stride)]


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("output_stride,size", [(8, 65), (16, 33), (32, 17)])
def test_full_size_symbolic_shapes(full_size, name, output_stride, size):
    backbone = full_size(name, output_stride)
    feats = backbone(keras.KerasTensor((1, 513, 513, 3)))
    assert tuple(feats["high_level"].shape) == (1, size, size, HIGH_CHANNELS[name])
    assert tuple(feats["low_level"].shape) == (1, 129, 129, LOW_CHANNELS[name])
    assert backbone.feature_strides["high_level"] == output_stride
    assert backbone.feature_strides["low_level"] == 4
    assert backbone.output_stride == output_stride
    if name == "mobilenetv2":  # TF deeplab's decoder end point
        assert tuple(feats["layer_4_depthwise_output"].shape) == (1, 129, 129, 144)


@pytest.mark.parametrize("name", sorted(TINY))
def test_full_size_parameter_counts(full_size, name):
    backbone = full_size(name, 16)
    total, trainable = backbone.count_params(), _trainable_count(backbone)
    print(f"{name}: {total:,} params ({trainable:,} trainable)")
    assert (total, trainable) == FULL_PARAMS[name]


def test_tf_slim_names(full_size):
    xception = {layer.name for layer in full_size("xception65", 16).layers}
    for name in [
        "entry_flow_conv1_1", "entry_flow_conv1_1_BatchNorm", "entry_flow_conv1_2",
        "entry_flow_block1_unit_1_xception_module_separable_conv1_depthwise",
        "entry_flow_block1_unit_1_xception_module_separable_conv1_depthwise_BatchNorm",
        "entry_flow_block1_unit_1_xception_module_separable_conv1_pointwise_BatchNorm",
        "entry_flow_block3_unit_1_xception_module_shortcut_BatchNorm",
        "middle_flow_block1_unit_16_xception_module_separable_conv3_pointwise",
        "exit_flow_block2_unit_1_xception_module_separable_conv3_pointwise_BatchNorm",
    ]:
        assert name in xception, name
    assert "middle_flow_block1_unit_1_xception_module_shortcut" not in xception
    assert "exit_flow_block2_unit_1_xception_module_shortcut" not in xception
    mobilenet = {layer.name for layer in full_size("mobilenetv2", 16).layers}
    for name in ["Conv", "Conv_BatchNorm", "expanded_conv_depthwise", "expanded_conv_project",
                 "expanded_conv_3_expand", "expanded_conv_3_expand_BatchNorm",
                 "expanded_conv_3_depthwise", "expanded_conv_16_project_BatchNorm"]:
        assert name in mobilenet, name
    assert "expanded_conv_expand" not in mobilenet
    assert "expanded_conv_17_project" not in mobilenet


def _layer_rates(backbone):
    return {layer.name: (layer.rate, layer.strides) for layer in backbone.layers
            if layer.name.endswith("_depthwise")}


def test_atrous_rates():
    with keras.StatelessScope(initialize_variables=False):
        xception = xception65(output_stride=8, multi_grid=(1, 2, 4), width_multiplier=1 / 16,
                              middle_units=1)
        mobilenet = mobilenetv2(output_stride=8, alpha=0.25)
    rates = _layer_rates(xception)
    prefix = "exit_flow_block2_unit_1_xception_module_separable_conv"
    assert [rates[f"{prefix}{i}_depthwise"] for i in (1, 2, 3)] == [(4, 1), (8, 1), (16, 1)]
    assert rates["entry_flow_block2_unit_1_xception_module_separable_conv3_depthwise"] == (1, 2)
    assert rates["entry_flow_block3_unit_1_xception_module_separable_conv3_depthwise"] == (1, 1)
    assert rates["middle_flow_block1_unit_1_xception_module_separable_conv1_depthwise"] == (2, 1)
    assert rates["exit_flow_block1_unit_1_xception_module_separable_conv3_depthwise"] == (2, 1)
    rates = _layer_rates(mobilenet)
    # Blocks 6 (stride 2 to OS 16) and 13 (to OS 32) lose their strides and
    # keep their input's rate; later blocks use the multiplied rate.
    assert rates["expanded_conv_3_depthwise"] == (1, 2)
    assert rates["expanded_conv_6_depthwise"] == (1, 1)
    assert rates["expanded_conv_7_depthwise"] == (2, 1)
    assert rates["expanded_conv_13_depthwise"] == (2, 1)
    assert rates["expanded_conv_14_depthwise"] == (4, 1)
    keras.utils.clear_session()


def _randomize(model, seed=0):
    """Random BN parameters and statistics, so the equivalence check is not trivial."""
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.weights:
        shape = tuple(w.shape)
        if "moving_variance" in w.path or "gamma" in w.path:
            weights.append(rng.uniform(0.5, 1.5, shape))
        elif "beta" in w.path or "moving_mean" in w.path:
            weights.append(rng.normal(0.0, 0.1, shape))
        else:
            weights.append(keras.ops.convert_to_numpy(w))
    model.set_weights([np.asarray(w, dtype="float32") for w in weights])


@pytest.fixture(scope="module", params=sorted(TINY))
def tiny_pair(request):
    """Tiny backbones at output stride 32 and 8 sharing (randomized) weights."""
    build, kwargs = TINY[request.param]
    b32 = build(output_stride=32, **kwargs)
    b8 = build(output_stride=8, **kwargs)
    _randomize(b32)
    b8.set_weights(b32.get_weights())
    return b32, b8


def test_tiny_runs_eagerly(tiny_pair):
    images = keras.random.uniform((1, 65, 65, 3), seed=0)
    for backbone, size in zip(tiny_pair, (3, 9)):
        feats = backbone(images, training=False)
        high = keras.ops.convert_to_numpy(feats["high_level"])
        low = keras.ops.convert_to_numpy(feats["low_level"])
        assert high.shape[1:3] == (size, size) and low.shape[1:3] == (17, 17)
        assert np.isfinite(high).all() and np.isfinite(low).all()


def test_output_stride_32_equals_subsampled_output_stride_8(tiny_pair):
    b32, b8 = tiny_pair
    images = keras.random.normal((1, 65, 65, 3), seed=1)
    y32 = keras.ops.convert_to_numpy(b32(images, training=False)["high_level"])
    y8 = keras.ops.convert_to_numpy(b8(images, training=False)["high_level"])
    assert y32.shape[1:3] == (3, 3) and y8.shape[1:3] == (9, 9)
    assert np.abs(y32).max() > 1e-2
    np.testing.assert_allclose(y32, y8[:, ::4, ::4], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cls,name", [(XceptionBackbone, "xception65"),
                                      (MobileNetV2Backbone, "mobilenetv2")])
def test_config_round_trip(cls, name):
    build, kwargs = TINY[name]
    backbone = build(output_stride=8, multi_grid=(1, 2, 4), **kwargs) if name == "xception65" \
        else build(output_stride=8, low_level="layer_4_depthwise_output", **kwargs)
    config = backbone.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    assert clone.count_params() == backbone.count_params()
    assert len(clone.weights) == len(backbone.weights)
    assert clone.output_stride == 8
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(backbone))
    assert isinstance(restored, cls) and restored.get_config() == config


def test_invalid_arguments():
    with pytest.raises(ValueError, match="output_stride"):
        xception65(output_stride=4)
    with pytest.raises(ValueError, match="multi_grid"):
        xception65(multi_grid=(1, 2))
    with pytest.raises(ValueError, match="output_stride"):
        mobilenetv2(output_stride=64)
    with pytest.raises(ValueError, match="low_level"):
        mobilenetv2(low_level="layer_7")
