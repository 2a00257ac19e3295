"""Conv + batch-norm building blocks shared by the backbones."""

import keras

from deeplab_keras.layers.atrous_conv import AtrousConv2D
from deeplab_keras.layers.atrous_conv import AtrousDepthwiseConv2D
from deeplab_keras.layers.batch_norm import BatchNorm
from deeplab_keras.layers.pooling import CaffePooling2D


def batch_norm(name, epsilon, momentum):
    return BatchNorm(axis=-1, epsilon=epsilon, momentum=momentum, name=name)


def separable_conv_bn(x, filters, name, *, kernel_size=3, strides=1, rate=1, bn_epsilon=1e-3,
                      bn_momentum=0.99, depth_activation=False, padding="symmetric"):
    """Depthwise atrous conv + BN (+ReLU) then pointwise conv + BN (+ReLU).

    The atrous separable convolution of DeepLab v3+: names follow TF-slim's
    `<name>_depthwise`, `<name>_depthwise_BatchNorm`, `<name>_pointwise`...
    """
    x = AtrousDepthwiseConv2D(kernel_size, rate=rate, strides=strides, padding=padding,
                              name=name + "_depthwise")(x)
    x = batch_norm(name + "_depthwise_BatchNorm", bn_epsilon, bn_momentum)(x)
    if depth_activation:
        x = keras.layers.ReLU(name=name + "_depthwise_relu")(x)
    x = AtrousConv2D(filters, 1, use_bias=False, name=name + "_pointwise")(x)
    x = batch_norm(name + "_pointwise_BatchNorm", bn_epsilon, bn_momentum)(x)
    if depth_activation:
        x = keras.layers.ReLU(name=name + "_pointwise_relu")(x)
    return x


POOL_PADDINGS = ("symmetric", "same", "caffe")


def max_pool_3x3_s2(x, name, padding="symmetric"):
    """3x3 stride-2 max pool; "symmetric" pads 1 on each side (post-ReLU input), "same" is TF's
    rule, "caffe" pads 1 and rounds the output size up as Caffe does."""
    if padding not in POOL_PADDINGS:
        raise ValueError(f"pool padding must be one of {POOL_PADDINGS}; received {padding!r}.")
    if padding == "caffe":
        return CaffePooling2D("max", 3, 2, 1, rounding="ceil", name=name)(x)
    if padding == "symmetric":
        x = keras.layers.ZeroPadding2D(1, data_format="channels_last", name=name + "_pad")(x)
        return keras.layers.MaxPooling2D(3, strides=2, padding="valid", data_format="channels_last",
                                         name=name)(x)
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", data_format="channels_last",
                                     name=name)(x)
