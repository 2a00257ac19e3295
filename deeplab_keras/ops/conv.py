"""Atrous convolution with the fastest correct kernel on each backend.

`keras.ops.conv` on TensorFlow goes through `tf.nn.convolution`, which
implements dilation as SpaceToBatchND + conv + BatchToSpaceND: at 65x65 with
rate 24-36 (DeepLab's ASPP) that is 3-4x slower than `tf.nn.conv2d` with
native dilations (measured: 623 vs 191 ms at rate 24, 2048 -> 256 channels).
Native dilated kernels exist on GPU and, on CPU, with oneDNN (TF's default on
x86-64); without oneDNN TF's CPU gradient does not support dilation, so the
portable path is kept there.

Depthwise convolutions (Xception-65, MobileNetV2) go through the same SpaceToBatchND detour in
`tf.nn.depthwise_conv2d`; oneDNN's native dilated depthwise kernel computes the same forward
(bit-identical here) ~1.6x faster (4.6 vs 7.5 ms at 65x65x728, rate 4), but its backward
kernels are wrong with dilation (they ignore it, or abort), so the gradient is taken through
the SpaceToBatch formulation.
"""

import functools
import os
import platform

import keras
from keras import ops


@functools.lru_cache(maxsize=None)
def _tf_native_dilation_supported():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return True
    flag = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if flag is not None:
        return flag.strip().lower() not in ("0", "false")
    return platform.machine().lower() in ("x86_64", "amd64")


def atrous_conv2d(x, kernel, strides, padding, rate):
    """NHWC convolution; `padding` is "same" or "valid" (callers pad first)."""
    if rate > 1 and keras.backend.backend() == "tensorflow" and _tf_native_dilation_supported():
        import tensorflow as tf

        return tf.nn.conv2d(x, kernel, strides, padding.upper(), dilations=rate)
    return ops.conv(x, kernel, strides=strides, padding=padding, dilation_rate=rate,
                    data_format="channels_last")


def atrous_depthwise_conv2d(x, kernel, strides, padding, rate):
    """NHWC depthwise convolution (`kernel` [k, k, in, multiplier])."""
    if (rate > 1 and strides == 1 and keras.backend.backend() == "tensorflow"
            and _tf_native_dilation_supported()):
        return _native_dilated_depthwise(x, kernel, padding.upper(), rate)
    return ops.depthwise_conv(x, kernel, strides=strides, padding=padding, dilation_rate=rate,
                              data_format="channels_last")


def _native_dilated_depthwise(x, kernel, padding, rate):
    import tensorflow as tf

    @tf.custom_gradient
    def convolve(x, kernel):
        y = tf.raw_ops.DepthwiseConv2dNative(input=x, filter=kernel, strides=[1, 1, 1, 1],
                                             padding=padding, dilations=[1, rate, rate, 1])

        def gradient(dy):
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                reference = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], padding,
                                                   dilations=[rate, rate])
            return tape.gradient(reference, [x, kernel], output_gradients=dy)

        return y, gradient

    return convolve(x, kernel)
