"""Atrous (dilated) convolution, the paper's core operator."""

import keras
from keras import ops

from deeplab_keras.ops.conv import atrous_conv2d
from deeplab_keras.ops.conv import atrous_depthwise_conv2d

PADDINGS = ("symmetric", "same", "valid")


def _check_common(kernel_size, rate, strides, padding):
    if int(kernel_size) < 1:
        raise ValueError(f"`kernel_size` must be >= 1; received {kernel_size}.")
    if int(rate) < 1:
        raise ValueError(f"`rate` (dilation) must be >= 1; received {rate}.")
    if int(strides) < 1:
        raise ValueError(f"`strides` must be >= 1; received {strides}.")
    if padding not in PADDINGS:
        raise ValueError(f"`padding` must be one of {PADDINGS}; received {padding!r}.")
    if int(rate) > 1 and int(strides) > 1:
        raise ValueError(
            "Atrous convolution with both `rate` > 1 and `strides` > 1 is "
            f"undefined here (rate={rate}, strides={strides}); use one or the other."
        )


def _pad_amounts(kernel_size, rate):
    effective = (kernel_size - 1) * rate + 1
    total = effective - 1
    return total // 2, total - total // 2


def _conv_padding(x, kernel_size, rate, strides, padding):
    """Returns (possibly padded x, backend padding string).

    "symmetric" pads (k_eff - 1) // 2 before and the rest after, the
    convention of Caffe, PyTorch and TF-slim's `conv2d_same`, which keeps
    strided and dilated versions of a network aligned position by position.
    """
    if padding == "valid":
        return x, "valid"
    if padding == "same":
        return x, "same"
    if strides == 1 and kernel_size % 2 == 1:
        return x, "same"
    before, after = _pad_amounts(kernel_size, rate)
    if before == 0 and after == 0:
        return x, "valid"
    x = ops.pad(x, [[0, 0], [before, after], [before, after], [0, 0]])
    return x, "valid"


@keras.saving.register_keras_serializable(package="deeplab_keras")
class AtrousConv2D(keras.layers.Layer):
    """2-D atrous convolution (Chen et al., TPAMI 2018, Sec. 3.1).

    `y[i] = sum_k x[i + rate * k] * w[k]`: a convolution whose filter taps are
    `rate` pixels apart, enlarging the field of view without adding
    parameters or reducing resolution. `rate=1` is a plain convolution.

    Args:
        filters: int. Number of output channels.
        kernel_size: int. Square kernel size.
        rate: int. Atrous rate (dilation), default 1.
        strides: int. Stride, default 1. Cannot be combined with `rate > 1`.
        padding: "symmetric" (default; pads `(k_eff - 1) // 2` before and the
            rest after, as Caffe, PyTorch and TF-slim do), "same" (TF's SAME,
            asymmetric for even sizes under stride 2) or "valid".
        use_bias: bool. Whether to add a bias.
        kernel_initializer: initializer for the `[k, k, in, filters]` kernel.
        bias_initializer: initializer for the bias.
        kernel_regularizer: optional regularizer for the kernel.

    Example:

    ```python
    conv = deeplab_keras.layers.AtrousConv2D(64, 3, rate=2)
    y = conv(keras.random.normal((1, 65, 65, 32)))  # (1, 65, 65, 64)
    ```
    """

    def __init__(
        self,
        filters,
        kernel_size,
        rate=1,
        strides=1,
        padding="symmetric",
        use_bias=True,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_common(kernel_size, rate, strides, padding)
        if int(filters) < 1:
            raise ValueError(f"`filters` must be >= 1; received {filters}.")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.rate = int(rate)
        self.strides = int(strides)
        self.padding = padding
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise ValueError(
                f"{self.name}: the channel dimension of the input must be known; "
                f"received shape {input_shape}."
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, in_channels, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )
        else:
            self.bias = None

    def call(self, inputs):
        x, pad = _conv_padding(inputs, self.kernel_size, self.rate, self.strides, self.padding)
        y = atrous_conv2d(x, ops.cast(self.kernel, x.dtype), self.strides, pad, self.rate)
        if self.use_bias:
            y = y + ops.cast(self.bias, y.dtype)
        return y

    def compute_output_shape(self, input_shape):
        return _output_shape(input_shape, self.kernel_size, self.rate, self.strides,
                             self.padding, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "rate": self.rate,
                "strides": self.strides,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="deeplab_keras")
class AtrousDepthwiseConv2D(keras.layers.Layer):
    """Depthwise atrous convolution (one filter per input channel).

    The depthwise half of the atrous separable convolution used by
    Xception-65 and MobileNetV2 in DeepLab v3/v3+ (Chen et al., ECCV 2018).

    Args:
        kernel_size: int. Square kernel size.
        rate: int. Atrous rate, default 1.
        strides: int. Stride, default 1. Cannot be combined with `rate > 1`.
        depth_multiplier: int. Output channels per input channel.
        padding: "symmetric" (default), "same" or "valid"; see `AtrousConv2D`.
        use_bias: bool. Whether to add a bias.
        depthwise_initializer: initializer for the `[k, k, in, mult]` kernel.
        bias_initializer: initializer for the bias.

    Example:

    ```python
    dw = deeplab_keras.layers.AtrousDepthwiseConv2D(3, rate=2)
    y = dw(keras.random.normal((1, 33, 33, 16)))  # (1, 33, 33, 16)
    ```
    """

    def __init__(
        self,
        kernel_size,
        rate=1,
        strides=1,
        depth_multiplier=1,
        padding="symmetric",
        use_bias=False,
        depthwise_initializer="he_normal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_common(kernel_size, rate, strides, padding)
        self.kernel_size = int(kernel_size)
        self.rate = int(rate)
        self.strides = int(strides)
        self.depth_multiplier = int(depth_multiplier)
        self.padding = padding
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise ValueError(f"{self.name}: the channel dimension must be known.")
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel",
            shape=(self.kernel_size, self.kernel_size, in_channels, self.depth_multiplier),
            initializer=self.depthwise_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(in_channels * self.depth_multiplier,),
                initializer=self.bias_initializer,
            )
        else:
            self.bias = None

    def call(self, inputs):
        x, pad = _conv_padding(inputs, self.kernel_size, self.rate, self.strides, self.padding)
        y = atrous_depthwise_conv2d(x, ops.cast(self.depthwise_kernel, x.dtype),
                                    self.strides, pad, self.rate)
        if self.use_bias:
            y = y + ops.cast(self.bias, y.dtype)
        return y

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] * self.depth_multiplier
        return _output_shape(input_shape, self.kernel_size, self.rate, self.strides,
                             self.padding, channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "rate": self.rate,
                "strides": self.strides,
                "depth_multiplier": self.depth_multiplier,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "depthwise_initializer": keras.initializers.serialize(self.depthwise_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def _output_shape(input_shape, kernel_size, rate, strides, padding, channels):
    effective = (kernel_size - 1) * rate + 1

    def one(n):
        if n is None:
            return None
        if padding == "valid":
            return (n - effective) // strides + 1
        return -(-n // strides) if padding == "same" else (n - 1) // strides + 1

    return (input_shape[0], one(input_shape[1]), one(input_shape[2]), channels)
