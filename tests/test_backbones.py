import keras
import numpy as np
import pytest

from deeplab_keras import backbones
from deeplab_keras.backbones import AtrousTracker

TINY_RESNET = dict(depths=(2, 2, 2, 2), widths=(4, 4, 8, 8), stem_filters=4)
RESNETS = ["resnet50", "resnet101", "resnet50_v1_5", "resnet101_v1_5", "resnet50_slim",
           "resnet101_slim"]


def symbolic_features(backbone, size=513):
    return backbone(keras.KerasTensor((1, size, size, 3)))


@pytest.mark.parametrize("name", ["resnet101", "resnet101_v1_5", "resnet101_slim"])
@pytest.mark.parametrize("output_stride,expected", [(8, 65), (16, 33), (32, 17)])
def test_resnet_output_stride_shapes(name, output_stride, expected):
    feats = symbolic_features(backbones.get(name, output_stride=output_stride))
    assert feats["high_level"].shape == (1, expected, expected, 2048)
    assert feats["low_level"].shape[1:3] == (129, 129)


def test_vgg_is_output_stride_8_only():
    feats = symbolic_features(backbones.vgg16_largefov())
    assert feats["high_level"].shape == (1, 65, 65, 512)
    with pytest.raises(ValueError, match="output_stride"):
        backbones.vgg16_largefov(output_stride=16)


def test_full_size_parameter_counts():
    # keras.applications.ResNet101(include_top=False): 42,658,176 parameters.
    assert backbones.resnet101().count_params() == 42_658_176
    assert backbones.resnet50().count_params() == 23_587_712
    # VGG-16 conv layers (keras.applications VGG16 without top): 14,714,688.
    assert backbones.vgg16_largefov().count_params() == 14_714_688


def _corresponding(b32, b8, x, factor=4):
    f32 = np.asarray(b32(x, training=False)["high_level"])
    f8 = np.asarray(b8(x, training=False)["high_level"])
    return f32, f8[:, ::factor, ::factor]


@pytest.mark.parametrize("name", RESNETS[::2] + ["resnet101_slim"])
def test_stride_to_dilation_keeps_the_weights(name):
    b32 = backbones.get(name, output_stride=32, **TINY_RESNET)
    b8 = backbones.get(name, output_stride=8, **TINY_RESNET)
    b8.set_weights(b32.get_weights())
    x = np.random.default_rng(0).normal(size=(1, 65, 65, 3)).astype("float32")
    f32, f8_sub = _corresponding(b32, b8, x)
    assert f32.shape == f8_sub.shape
    np.testing.assert_allclose(f32, f8_sub, atol=1e-4, rtol=1e-4)
    assert np.abs(f32).max() > 0


def test_atrous_tracker():
    tracker = AtrousTracker(output_stride=8, current_stride=4)
    assert tracker.step(2) == (2, 1, 1)
    assert tracker.step(2) == (1, 1, 2)
    assert tracker.step(2) == (1, 2, 4)
    assert tracker.step(1) == (1, 4, 4)


def test_multi_grid_rates():
    b = backbones.resnet101_v1_5(output_stride=16, multi_grid=(1, 2, 4), **TINY_RESNET)
    rates = [b.get_layer(f"conv5_block{u}_2_conv").rate for u in (1, 2)]
    # block rate 2 at OS 16; V1.5's strided unit keeps rate 1 before the multiplier.
    assert rates == [1 * 1, 2 * 2]
    b8 = backbones.resnet101(output_stride=8, multi_grid=(1, 2, 4), **TINY_RESNET)
    assert [b8.get_layer(f"conv5_block{u}_2_conv").rate for u in (1, 2)] == [4, 8]


def test_v1_5_first_dilated_unit_keeps_previous_rate():
    b = backbones.resnet101_v1_5(output_stride=8, **TINY_RESNET)
    assert b.get_layer("conv4_block1_2_conv").rate == 1
    assert b.get_layer("conv4_block2_2_conv").rate == 2
    assert b.get_layer("conv5_block1_2_conv").rate == 2
    assert b.get_layer("conv5_block2_2_conv").rate == 4
    caffe = backbones.resnet101(output_stride=8, **TINY_RESNET)
    assert caffe.get_layer("conv4_block1_2_conv").rate == 2
    assert caffe.get_layer("conv5_block1_2_conv").rate == 4


def test_backbone_config_round_trip_and_errors():
    b = backbones.resnet50_slim(output_stride=16, **TINY_RESNET)
    clone = type(b).from_config(b.get_config())
    assert clone.count_params() == b.count_params()
    assert clone.get_config() == b.get_config()
    with pytest.raises(ValueError, match="output_stride"):
        backbones.resnet50(output_stride=4)
    with pytest.raises(ValueError, match="stride_in"):
        backbones.ResNetBackbone(stride_in="2x2")
    with pytest.raises(ValueError, match="Did you mean"):
        backbones.get("resnet1O1")


def test_list_backbones():
    assert {"resnet101", "resnet101_v1_5", "vgg16_largefov", "xception65",
            "mobilenetv2"} <= set(backbones.list_backbones())


@pytest.mark.parametrize("name, kwargs", [("resnet50", TINY_RESNET), ("mobilenetv2",
                                                                      dict(alpha=0.35))])
def test_config_carries_the_dtype_policy_it_was_built_with(name, kwargs):
    """`dtype` builds every layer under that policy and survives a config round trip, whatever
    the global policy is when the config is rebuilt (keras-hub's Backbone idiom)."""
    backbone = backbones.get(name, output_stride=16, dtype="mixed_bfloat16", **kwargs)
    assert {layer.dtype_policy.name for layer in backbone.layers if layer.weights} == {
        "mixed_bfloat16"}
    config = backbone.get_config()
    assert config["dtype"]["config"]["name"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy was restored
    rebuilt = type(backbone).from_config(config)
    assert rebuilt.get_config() == config
    assert {layer.dtype_policy.name for layer in rebuilt.layers if layer.weights} == {
        "mixed_bfloat16"}
    default = backbones.get(name, output_stride=16, **kwargs)
    assert default.get_config()["dtype"]["config"]["name"] == "float32"


@pytest.mark.requires_tf
@pytest.mark.parametrize("size", [321, 500, 513])
def test_mobilenetv2_same_padding_is_tf_same_at_even_and_odd_sizes(size):
    """TF research/deeplab's MobileNetV2 pads stride-2 convs with TF's 'SAME' rule (more at
    the end on even sizes); `padding="same"` reproduces tf.nn.conv2d / depthwise_conv2d."""
    import tensorflow as tf

    backbone = backbones.mobilenetv2(output_stride=32, alpha=0.35, padding="same")
    probe = keras.Model(backbone.input, [backbone.get_layer("Conv").output,
                                         backbone.get_layer("expanded_conv_1_depthwise").output,
                                         backbone.get_layer("expanded_conv_1_expand_relu")
                                         .output])
    x = np.random.default_rng(size).normal(size=(1, size, size, 3)).astype("float32")
    stem, depthwise, expanded = (np.asarray(t) for t in probe(x))
    kernel = backbone.get_layer("Conv").kernel.numpy()
    np.testing.assert_allclose(stem, tf.nn.conv2d(x, kernel, 2, "SAME").numpy(), atol=1e-4)
    depthwise_kernel = backbone.get_layer("expanded_conv_1_depthwise").depthwise_kernel.numpy()
    reference = tf.nn.depthwise_conv2d(expanded, depthwise_kernel, [1, 2, 2, 1], "SAME")
    np.testing.assert_allclose(depthwise, reference.numpy(), atol=1e-4)
    symmetric = backbones.mobilenetv2(output_stride=32, alpha=0.35)
    symmetric.set_weights(backbone.get_weights())
    shifted = np.asarray(keras.Model(symmetric.input, symmetric.get_layer("Conv").output)(x))
    assert (np.abs(shifted - stem).max() > 1e-3) == (size % 2 == 0)


@pytest.mark.requires_tf
@pytest.mark.parametrize("size", [321, 500, 513])
def test_xception65_stem_is_tf_fixed_padding_at_even_and_odd_sizes(size):
    """TF research/deeplab's Xception-65 pads stride-2 convs explicitly (`fixed_padding`:
    (k_eff - 1) // 2 before, the rest after, then 'VALID'); our default padding is that."""
    import tensorflow as tf

    backbone = backbones.xception65(output_stride=16, width_multiplier=1 / 16, middle_units=1)
    layer = backbone.get_layer("entry_flow_conv1_1")
    probe = keras.Model(backbone.input, layer.output)
    x = np.random.default_rng(size).normal(size=(1, size, size, 3)).astype("float32")
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    expected = tf.nn.conv2d(padded, layer.kernel.numpy(), 2, "VALID").numpy()
    np.testing.assert_allclose(np.asarray(probe(x)), expected, atol=1e-4)
