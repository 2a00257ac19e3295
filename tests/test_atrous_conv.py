import keras
import numpy as np
import pytest

from deeplab_keras.layers import AtrousConv2D
from deeplab_keras.layers import AtrousDepthwiseConv2D
from tests.helpers import run_layer_test


def zero_upsample(kernel, rate):
    """Inserts rate - 1 zeros between kernel taps (the paper's definition)."""
    k = kernel.shape[0]
    size = (k - 1) * rate + 1
    out = np.zeros((size, size) + kernel.shape[2:], kernel.dtype)
    out[::rate, ::rate] = kernel
    return out


def numpy_conv_same(x, kernel, bias):
    """Plain stride-1 convolution with symmetric zero padding, in numpy."""
    k = kernel.shape[0]
    p = k // 2
    xp = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)])
    b, h, w, _ = x.shape
    out = np.zeros((b, h, w, kernel.shape[-1]), np.float64)
    for i in range(k):
        for j in range(k):
            out += np.einsum("bhwc,cf->bhwf", xp[:, i:i + h, j:j + w], kernel[i, j])
    return out + bias


@pytest.mark.parametrize("rate", [1, 2, 3])
def test_atrous_equals_conv_with_zero_upsampled_kernel(rate):
    rng = np.random.default_rng(rate)
    x = rng.normal(size=(2, 13, 11, 4)).astype("float32")
    layer = AtrousConv2D(5, 3, rate=rate)
    y = np.asarray(layer(x))
    kernel, bias = (np.asarray(w) for w in layer.get_weights())
    reference = numpy_conv_same(x.astype(np.float64), zero_upsample(kernel, rate), bias)
    np.testing.assert_allclose(y, reference, atol=1e-4)
    plain = keras.layers.Conv2D(5, (3 - 1) * rate + 1, padding="same")
    plain.build(x.shape)
    plain.set_weights([zero_upsample(kernel, rate), bias])
    np.testing.assert_allclose(y, np.asarray(plain(x)), atol=1e-4)


@pytest.mark.parametrize("rate", [1, 2, 4])
def test_depthwise_atrous_equals_zero_upsampled_depthwise(rate):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 17, 15, 3)).astype("float32")
    layer = AtrousDepthwiseConv2D(3, rate=rate)
    y = np.asarray(layer(x))
    (kernel,) = layer.get_weights()
    big = zero_upsample(kernel, rate)
    per_channel = [numpy_conv_same(x[..., c:c + 1].astype(np.float64), big[:, :, c:c + 1, :],
                                   np.zeros(1)) for c in range(3)]
    np.testing.assert_allclose(y, np.concatenate(per_channel, -1), atol=1e-4)


def test_symmetric_padding_keeps_strided_and_dense_aligned():
    x = np.random.default_rng(0).normal(size=(1, 16, 16, 2)).astype("float32")
    strided = AtrousConv2D(3, 3, strides=2)
    dense = AtrousConv2D(3, 3)
    strided.build(x.shape)
    dense.build(x.shape)
    dense.set_weights(strided.get_weights())
    np.testing.assert_allclose(np.asarray(strided(x)), np.asarray(dense(x))[:, ::2, ::2], atol=1e-5)


@pytest.mark.parametrize("padding,strides,expected", [
    ("symmetric", 1, (2, 9, 10, 4)), ("symmetric", 2, (2, 5, 5, 4)),
    ("same", 2, (2, 5, 5, 4)), ("valid", 1, (2, 5, 6, 4)),
])
def test_output_shapes_and_config(padding, strides, expected):
    x = np.zeros((2, 9, 10, 3), "float32")
    rate = 1 if strides > 1 else 2
    run_layer_test(AtrousConv2D(4, 3, rate=rate, strides=strides, padding=padding), x, expected)


def test_depthwise_config_round_trip():
    x = np.ones((1, 8, 8, 3), "float32")
    run_layer_test(AtrousDepthwiseConv2D(3, rate=2, depth_multiplier=2), x, (1, 8, 8, 6))


@pytest.mark.parametrize("kwargs,match", [
    (dict(filters=4, kernel_size=3, rate=0), "rate"),
    (dict(filters=4, kernel_size=3, rate=2, strides=2), "both"),
    (dict(filters=4, kernel_size=3, padding="reflect"), "padding"),
    (dict(filters=0, kernel_size=3), "filters"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AtrousConv2D(**kwargs)


@pytest.mark.parametrize("rate,padding,multiplier", [(2, "same", 1), (3, "valid", 2),
                                                     (4, "same", 2)])
def test_dilated_depthwise_fast_path_matches_portable_path_and_gradients(rate, padding,
                                                                        multiplier):
    """On TensorFlow the dilated depthwise conv runs oneDNN's native kernel (forward) with the
    SpaceToBatch formulation's gradient; both must equal keras.ops.depthwise_conv's."""
    from deeplab_keras.ops.conv import atrous_depthwise_conv2d

    rng = np.random.default_rng(rate)
    x = keras.ops.convert_to_tensor(rng.normal(size=(2, 17, 19, 6)).astype("float32"))
    kernel = keras.ops.convert_to_tensor(
        rng.normal(size=(3, 3, 6, multiplier)).astype("float32"))
    weight = keras.ops.convert_to_tensor(rng.normal(size=(1, 1, 1, 6 * multiplier)).astype(
        "float32"))

    def reference(x, kernel):
        return keras.ops.depthwise_conv(x, kernel, strides=1, padding=padding,
                                        dilation_rate=rate)

    def fast(x, kernel):
        return atrous_depthwise_conv2d(x, kernel, 1, padding, rate)

    np.testing.assert_allclose(np.asarray(fast(x, kernel)), np.asarray(reference(x, kernel)),
                               atol=1e-5)
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    def gradients(fn):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            loss = tf.reduce_sum(tf.sin(fn(x, kernel)) * weight)
        return tape.gradient(loss, [x, kernel])

    expected = gradients(reference)
    for path in (fast, tf.function(fast)):
        for got, want in zip(gradients(path), expected):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)
