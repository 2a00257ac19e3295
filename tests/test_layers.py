import keras
import numpy as np
import pytest

from deeplab_keras.layers import ASPP
from deeplab_keras.layers import ASPPV2
from deeplab_keras.layers import ConvBN
from deeplab_keras.layers import DeepLabV3PlusDecoder
from deeplab_keras.layers import ImageNormalization
from deeplab_keras.layers import aspp_rates
from deeplab_keras.layers import aspp_v2_rates
from tests.helpers import run_layer_test


def features(shape=(2, 9, 11, 16), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("kwargs", [
    dict(rates=(1, 2, 3)),
    dict(rates=(1, 2), separable=True, pooling_first=True),
    dict(rates=(), image_pooling=True),  # TF MobileNetV2: 1x1 + image pooling only
    dict(rates=(2,), image_pooling=False, dropout=0.0),
])
def test_aspp_shapes_and_config(kwargs):
    layer = ASPP(filters=8, **kwargs)
    run_layer_test(layer, features(), (2, 9, 11, 8))
    branches = 1 + len(kwargs["rates"]) + int(kwargs.get("image_pooling", True))
    assert layer.projection.conv.kernel.shape == (1, 1, 8 * branches, 8)


def test_aspp_image_pooling_branch_is_spatially_constant():
    layer = ASPP(filters=4, rates=(), image_pooling=True, dropout=0.0)
    x = features((1, 6, 7, 3))
    layer(x)
    pooled = layer.pooling_conv(np.mean(x, axis=(1, 2), keepdims=True), training=False)
    # Project the pooling branch alone: zero the 1x1 branch's part of the projection.
    kernel = np.array(layer.projection.conv.kernel)
    kernel[:, :, :4, :] = 0
    layer.projection.conv.kernel.assign(kernel)
    y = np.asarray(layer(x, training=False))
    expected = np.asarray(layer.projection(np.broadcast_to(
        np.concatenate([np.zeros((1, 1, 1, 4), "float32"), np.asarray(pooled)], -1),
        (1, 6, 7, 8)), training=False))
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_aspp_default_rates():
    assert aspp_rates(16) == (6, 12, 18)
    assert aspp_rates(8) == (12, 24, 36)
    with pytest.raises(ValueError, match="output_stride"):
        aspp_rates(4)


@pytest.mark.parametrize("branch", ["resnet", "vgg"])
def test_aspp_v2_sums_branch_scores(branch):
    layer = ASPPV2(num_classes=5, rates=(1, 2, 3), branch=branch, hidden_filters=6)
    x = features()
    run_layer_test(layer, x, (2, 9, 11, 5))
    total = 0
    for i, rate in enumerate(layer.rates):
        single = ASPPV2(num_classes=5, rates=(rate,), branch=branch, hidden_filters=6)
        single(x)
        single.set_weights([w for layers in [layer.branches[i]] for lyr in layers
                            for w in lyr.get_weights()])
        total = total + np.asarray(single(x, training=False))
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), total, atol=1e-4)


def test_aspp_v2_named_rates():
    assert aspp_v2_rates("S") == (2, 4, 8, 12)
    assert aspp_v2_rates("L") == (6, 12, 18, 24)
    assert aspp_v2_rates("LargeFOV") == (12,)
    with pytest.raises(ValueError, match="aspp"):
        aspp_v2_rates("XL")


@pytest.mark.parametrize("separable", [False, True])
def test_decoder(separable):
    layer = DeepLabV3PlusDecoder(filters=8, low_level_filters=4, separable=separable)
    high, low = features((2, 5, 6, 16)), features((2, 17, 21, 12), seed=1)
    run_layer_test(layer, [high, low], (2, 17, 21, 8))
    assert layer.low_level_projection.conv.kernel.shape == (1, 1, 12, 4)


@pytest.mark.parametrize("separable", [False, True])
def test_conv_bn(separable):
    run_layer_test(ConvBN(7, 3, rate=2, separable=separable), features(), (2, 9, 11, 7))


def test_image_normalization():
    x = np.array([[[[10.0, 20.0, 30.0]]]], "float32")
    y = ImageNormalization(mean=(1, 2, 3), std=(2, 2, 2), channel_order="bgr")(x)
    np.testing.assert_allclose(np.asarray(y), [[[[14.5, 9.0, 3.5]]]])
    run_layer_test(ImageNormalization(mean=(1, 2, 3)), x, (1, 1, 1, 3))
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        ImageNormalization()(np.zeros((1, 4, 4, 4), "float32"))
    with pytest.raises(ValueError, match="std"):
        ImageNormalization(std=(1, 0, 1))


def test_layers_are_registered_serializable():
    for cls in (ASPP, ASPPV2, ConvBN, DeepLabV3PlusDecoder, ImageNormalization):
        assert keras.saving.get_registered_object(f"deeplab_keras>{cls.__name__}") is cls


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_batch_norm_matches_keras_in_inference_and_training(dtype):
    from deeplab_keras.layers import BatchNorm

    x = features((4, 5, 6, 8)) * 3 + 1
    ours = BatchNorm(epsilon=1e-3, dtype=dtype)
    reference = keras.layers.BatchNormalization(epsilon=1e-3, dtype=dtype)
    ours.build(x.shape)
    reference.build(x.shape)
    rng = np.random.default_rng(0)
    weights = [rng.uniform(0.5, 1.5, 8).astype("float32"), rng.normal(size=8).astype("float32"),
               rng.normal(size=8).astype("float32"), rng.uniform(0.5, 2, 8).astype("float32")]
    ours.set_weights(weights)
    reference.set_weights(weights)
    atol = 1e-5 if dtype == "float32" else 5e-2
    for training in (False, True):
        a = np.asarray(keras.ops.cast(ours(x, training=training), "float32"))
        b = np.asarray(keras.ops.cast(reference(x, training=training), "float32"))
        np.testing.assert_allclose(a, b, atol=atol)
    assert ours.compute_dtype == reference.compute_dtype
    run_layer_test(BatchNorm(), x, x.shape)
