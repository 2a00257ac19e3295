"""Conv (plain or atrous separable) + batch norm + optional ReLU, as one layer."""

import keras

from deeplab_keras.layers.atrous_conv import AtrousConv2D
from deeplab_keras.layers.atrous_conv import AtrousDepthwiseConv2D
from deeplab_keras.layers.batch_norm import BatchNorm


@keras.saving.register_keras_serializable(package="deeplab_keras")
class ConvBN(keras.layers.Layer):
    """`AtrousConv2D` -> `BatchNormalization` -> ReLU, optionally separable.

    With `separable=True` the conv is DeepLab v3+'s atrous separable conv:
    depthwise (rate) -> BN -> ReLU -> pointwise -> BN -> ReLU, the layout of
    TF research/deeplab's `split_separable_conv2d`.

    Args:
        filters: int. Output channels.
        kernel_size: int. Kernel size, default 1.
        rate: int. Atrous rate, default 1.
        separable: bool. Depthwise-separable conv (kernel_size > 1 only).
        activation: bool. Apply ReLU after the batch norm.
        use_bias: bool. Conv bias (off: the batch norm has a shift).
        bn_epsilon: float. Batch-norm epsilon.
        bn_momentum: float. Batch-norm momentum.

    Example:

    ```python
    block = deeplab_keras.layers.ConvBN(256, 3, rate=12)
    block(keras.random.normal((1, 33, 33, 2048))).shape  # (1, 33, 33, 256)
    ```
    """

    def __init__(self, filters, kernel_size=1, rate=1, separable=False, activation=True,
                 use_bias=False, bn_epsilon=1e-5, bn_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.rate = int(filters), int(kernel_size), int(rate)
        self.separable = bool(separable) and self.kernel_size > 1
        self.activation, self.use_bias = bool(activation), bool(use_bias)
        self.bn_epsilon, self.bn_momentum = float(bn_epsilon), float(bn_momentum)
        if self.separable:
            self.depthwise = AtrousDepthwiseConv2D(self.kernel_size, rate=self.rate,
                                                   name="depthwise")
            self.depthwise_bn = self._bn("depthwise_bn")
            self.conv = AtrousConv2D(self.filters, 1, use_bias=self.use_bias, name="pointwise")
        else:
            self.depthwise = None
            self.depthwise_bn = None
            self.conv = AtrousConv2D(self.filters, self.kernel_size, rate=self.rate,
                                     use_bias=self.use_bias, name="conv")
        self.bn = self._bn("bn")

    def _bn(self, name):
        return BatchNorm(epsilon=self.bn_epsilon, momentum=self.bn_momentum,
                                               name=name)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.separable:
            self.depthwise.build(shape)
            self.depthwise_bn.build(shape)
        self.conv.build(shape)
        out_shape = shape[:-1] + (self.filters,)
        self.bn.build(out_shape)

    def call(self, x, training=None):
        if self.separable:
            x = self.depthwise(x)
            x = self.depthwise_bn(x, training=training)
            x = keras.ops.relu(x)
        x = self.conv(x)
        x = self.bn(x, training=training)
        return keras.ops.relu(x) if self.activation else x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters, "kernel_size": self.kernel_size, "rate": self.rate,
            "separable": self.separable, "activation": self.activation,
            "use_bias": self.use_bias, "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
        })
        return config
