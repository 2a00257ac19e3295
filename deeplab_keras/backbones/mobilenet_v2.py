"""MobileNetV2 up to layer_18 (320 channels), as TF research/deeplab uses it.

Layer names are TF-slim's `MobilenetV2/...` scopes with "/" replaced by "_"
and the `MobilenetV2/` prefix dropped: `Conv`, `Conv_BatchNorm`,
`expanded_conv_depthwise`, `expanded_conv_3_expand`,
`expanded_conv_3_expand_BatchNorm`, `expanded_conv_3_project`, ...
TF-slim end point `layer_{i + 2}` is the output of block `i` (`Conv` is
`layer_1`).
"""

import keras

from deeplab_keras.backbones.base import Backbone
from deeplab_keras.backbones.blocks import batch_norm
from deeplab_keras.backbones.output_stride import AtrousTracker
from deeplab_keras.backbones.output_stride import check_output_stride
from deeplab_keras.layers.atrous_conv import AtrousConv2D
from deeplab_keras.layers.atrous_conv import AtrousDepthwiseConv2D

# (expansion t, channels c, repeats n, stride s) of Sandler et al. 2018, Table 2.
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)
# Stride-4/8/16 end points (TF-slim layer numbers) exposed as extra features.
END_POINTS = ("layer_4", "layer_7", "layer_14")
PADDINGS = ("symmetric", "same")
LOW_LEVEL_SOURCES = ("layer_4", "layer_4_depthwise_output")


def make_divisible(value, divisor=8, min_value=None):
    """TF-slim mobilenet's `_make_divisible`: nearest multiple, at least `min_value`."""
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


@keras.saving.register_keras_serializable(package="deeplab_keras")
class MobileNetV2Backbone(Backbone):
    """MobileNetV2 (Sandler et al., CVPR 2018) with atrous depthwise convs.

    A 3x3/32 stride-2 stem then 17 inverted residual blocks: 1x1 expand +
    BN + ReLU6 (skipped when t = 1), 3x3 depthwise + BN + ReLU6 (carrying the
    stride or atrous rate), linear 1x1 project + BN, and a residual add when
    the block's own stride is 1 and depths match. The final 1x1/1280 conv is omitted, as in
    DeepLab. Features: "high_level" is layer_18 (320 channels); "low_level"
    is layer_4, the last stride-4 block (24 channels), or, with
    `low_level="layer_4_depthwise_output"`, that block's depthwise output
    (144 channels), the end point TF deeplab's v3+ decoder uses.

    Args:
        output_stride: 8, 16 or 32.
        alpha: width multiplier; channels are rounded to multiples of 8
            (at least 8) as TF-slim's `depth_multiplier` does.
        low_level: "layer_4" or "layer_4_depthwise_output".
        bn_epsilon: batch-norm epsilon (TF-slim 1e-3).
        bn_momentum: batch-norm moving-average momentum (TF-slim mobilenet
            trains with 0.997).
        padding: "symmetric" (default) or "same": TF's rule, which pads stride-2 convs
            more at the end on even sizes; TF research/deeplab's MobileNetV2 uses it (its
            feature extractor never sets `use_explicit_padding`).

    Example:

    ```python
    backbone = deeplab_keras.backbones.mobilenetv2(output_stride=8)
    feats = backbone(keras.random.uniform((1, 513, 513, 3)))
    feats["high_level"].shape  # (1, 65, 65, 320)
    feats["low_level"].shape  # (1, 129, 129, 24)
    ```
    """

    def __init__(self, output_stride=16, alpha=1.0, low_level="layer_4", bn_epsilon=1e-3,
                 bn_momentum=0.99, padding="symmetric", **kwargs):
        output_stride = check_output_stride(output_stride, who="MobileNetV2Backbone")
        if float(alpha) <= 0:
            raise ValueError(f"`alpha` must be > 0; received {alpha}.")
        if padding not in PADDINGS:
            raise ValueError(f"`padding` must be one of {PADDINGS}; received {padding!r}.")
        if low_level not in LOW_LEVEL_SOURCES:
            raise ValueError(f"`low_level` must be one of {LOW_LEVEL_SOURCES}; "
                             f"received {low_level!r}.")
        alpha = float(alpha)
        bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)

        inputs = keras.Input((None, None, 3), name="images")
        x = AtrousConv2D(make_divisible(32 * alpha), 3, strides=2, use_bias=False,
                         padding=padding, name="Conv")(inputs)
        x = batch_norm("Conv_BatchNorm", bn_epsilon, bn_momentum)(x)
        x = keras.layers.ReLU(6.0, name="Conv_relu")(x)
        features, strides = {"stem": x}, {"stem": 2}

        tracker = AtrousTracker(output_stride, current_stride=2)
        index = 0
        for t, c, n, s in INVERTED_RESIDUAL_SETTINGS:
            out_channels = make_divisible(c * alpha)
            for r in range(n):
                block_stride = s if r == 0 else 1
                stride, rate, _ = tracker.step(block_stride)
                name = "expanded_conv" + (f"_{index}" if index else "")
                x, depthwise = _inverted_residual(x, t, out_channels, name, stride=stride,
                                                  rate=rate, residual=block_stride == 1,
                                                  padding=padding, **bn)
                layer = f"layer_{index + 2}"
                if layer in END_POINTS:
                    features[layer], strides[layer] = x, tracker.current_stride
                    features[layer + "_depthwise_output"] = depthwise
                    strides[layer + "_depthwise_output"] = tracker.current_stride
                index += 1
        features["low_level"], strides["low_level"] = features[low_level], 4
        features["high_level"], strides["high_level"] = x, tracker.current_stride

        config = dict(alpha=alpha, low_level=low_level, bn_epsilon=bn_epsilon,
                      bn_momentum=bn_momentum, padding=padding)
        self._init_backbone(inputs, features, output_stride, strides, config, **kwargs)
        self.alpha, self.low_level, self.padding = alpha, low_level, padding
        self.bn_epsilon, self.bn_momentum = bn_epsilon, bn_momentum


def _inverted_residual(x, expansion, out_channels, name, *, stride, rate, residual, padding,
                       bn_epsilon, bn_momentum):
    """TF-slim `expanded_conv`; returns the block output and the depthwise output.

    `residual` follows the network's own stride, not the atrous one, so a
    block whose stride was removed never gains a shortcut (TF-slim would add
    one if its depths matched, which never happens for alpha >= 0.25).
    """
    in_channels = x.shape[-1]
    y = x
    if expansion > 1:
        y = AtrousConv2D(make_divisible(in_channels * expansion), 1, use_bias=False,
                         name=name + "_expand")(y)
        y = batch_norm(name + "_expand_BatchNorm", bn_epsilon, bn_momentum)(y)
        y = keras.layers.ReLU(6.0, name=name + "_expand_relu")(y)
    y = AtrousDepthwiseConv2D(3, rate=rate, strides=stride, padding=padding,
                              name=name + "_depthwise")(y)
    y = batch_norm(name + "_depthwise_BatchNorm", bn_epsilon, bn_momentum)(y)
    depthwise = y = keras.layers.ReLU(6.0, name=name + "_depthwise_relu")(y)
    y = AtrousConv2D(out_channels, 1, use_bias=False, name=name + "_project")(y)
    y = batch_norm(name + "_project_BatchNorm", bn_epsilon, bn_momentum)(y)
    if residual and in_channels == out_channels:
        y = keras.layers.Add(name=name + "_add")([x, y])
    return y, depthwise


def mobilenetv2(output_stride=16, **kwargs):
    """MobileNetV2 to layer_18 (DeepLab); any `MobileNetV2Backbone` argument may be given."""
    return MobileNetV2Backbone(output_stride=output_stride, **kwargs)
