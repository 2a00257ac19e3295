"""ResNet-50/101 with an output stride, in the three layouts official weights use.

Stride placement (`stride_in`):

- "1x1": the stride sits in the first unit's first 1x1 conv and its 1x1
  shortcut. The original MSRA/Caffe ResNet, used by DeepLab v2, and
  keras.applications' ResNet50/101 (which also has conv biases).
- "3x3": the stride sits in the first unit's 3x3 conv (torchvision's
  "ResNet V1.5", no conv biases).
- "last_3x3": the stride sits in the last unit's 3x3 conv of each block
  (TF-slim `resnet_v1`; the shortcut subsamples with a 1x1 max pool when
  depths match).

Layer names follow keras.applications (`conv2_block1_1_conv`, ...) for every
layout, so converters map names one to one.
"""

import keras

from deeplab_keras.backbones.base import Backbone
from deeplab_keras.backbones.blocks import batch_norm
from deeplab_keras.backbones.blocks import max_pool_3x3_s2
from deeplab_keras.backbones.output_stride import AtrousTracker
from deeplab_keras.backbones.output_stride import check_output_stride
from deeplab_keras.layers.atrous_conv import AtrousConv2D

STRIDE_LAYOUTS = ("1x1", "3x3", "last_3x3")
DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}


def _check_multi_grid(multi_grid):
    if multi_grid is None:
        return None
    multi_grid = tuple(int(m) for m in multi_grid)
    if not multi_grid or min(multi_grid) < 1:
        raise ValueError(
            f"`multi_grid` must be positive ints, e.g. (1, 2, 4); received {multi_grid}.")
    return multi_grid


@keras.saving.register_keras_serializable(package="deeplab_keras")
class ResNetBackbone(Backbone):
    """Bottleneck ResNet (He et al., 2016) with atrous convolution.

    Args:
        depths: units per block, e.g. (3, 4, 23, 3) for ResNet-101.
        widths: bottleneck widths per block (outputs are 4x these).
        stem_filters: filters of the 7x7 stem conv.
        output_stride: 8, 16 or 32.
        stride_in: "1x1", "3x3" or "last_3x3" (see module docstring).
        multi_grid: optional unit rates for the last block, e.g. (1, 2, 4)
            (DeepLab v3): each unit's 3x3 rate is the block rate times these.
        use_bias: conv biases (keras.applications has them).
        bn_epsilon: batch-norm epsilon (keras.applications 1.001e-5,
            torchvision 1e-5).
        bn_momentum: batch-norm moving-average momentum.
        pool_padding: "symmetric" (PyTorch/Keras), "same" (TF-slim) or "caffe" (pad 1,
            output size rounded up: the DeepLab v2 Caffe release; equal to "symmetric" for
            inputs of size 32k+1 such as 513).

    Example:

    ```python
    backbone = deeplab_keras.backbones.resnet101(output_stride=16)
    feats = backbone(keras.random.uniform((1, 513, 513, 3)))
    feats["high_level"].shape  # (1, 33, 33, 2048)
    ```
    """

    def __init__(self, depths=(3, 4, 23, 3), widths=(64, 128, 256, 512), stem_filters=64,
                 output_stride=32, stride_in="1x1", multi_grid=None, use_bias=True,
                 bn_epsilon=1.001e-5, bn_momentum=0.99, pool_padding="symmetric", **kwargs):
        output_stride = check_output_stride(output_stride, who="ResNetBackbone")
        if stride_in not in STRIDE_LAYOUTS:
            raise ValueError(
                f"`stride_in` must be one of {STRIDE_LAYOUTS}; received {stride_in!r}.")
        depths, widths = tuple(int(d) for d in depths), tuple(int(w) for w in widths)
        if len(depths) != 4 or len(widths) != 4 or min(depths) < 1 or min(widths) < 1:
            raise ValueError(
                f"`depths` and `widths` need 4 positive ints; received {depths}, {widths}.")
        multi_grid = _check_multi_grid(multi_grid)
        bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)

        inputs = keras.Input((None, None, 3), name="images")
        x = AtrousConv2D(stem_filters, 7, strides=2, use_bias=use_bias, name="conv1_conv")(inputs)
        x = batch_norm("conv1_bn", bn_epsilon, bn_momentum)(x)
        x = keras.layers.Activation("relu", name="conv1_relu")(x)
        stem = x
        x = max_pool_3x3_s2(x, "pool1_pool", pool_padding)

        tracker = AtrousTracker(output_stride, current_stride=4)
        stage_strides = (2, 2, 2, 1) if stride_in == "last_3x3" else (1, 2, 2, 2)
        features, strides = {"stem": stem}, {"stem": 2}
        for b, (units, width, stride) in enumerate(zip(depths, widths, stage_strides)):
            block = f"conv{b + 2}"
            strided_unit = units - 1 if stride_in == "last_3x3" else 0
            for u in range(units):
                unit_stride = stride if u == strided_unit else 1
                s, rate_in, rate_out = tracker.step(unit_stride)
                if stride_in == "1x1":
                    rate_3x3 = rate_out
                else:
                    rate_3x3 = rate_in
                if multi_grid is not None and b == 3:
                    rate_3x3 = rate_3x3 * multi_grid[u % len(multi_grid)]
                if stride_in == "last_3x3" and u == units - 1 and b == 0:
                    features["low_level"] = x
                    strides["low_level"] = tracker.current_stride // max(s, 1)
                x = _bottleneck(x, width, f"{block}_block{u + 1}", stride=s, rate=rate_3x3,
                                stride_in=stride_in, use_bias=use_bias, first=(u == 0), **bn)
            features[f"C{b + 2}"] = x
            strides[f"C{b + 2}"] = tracker.current_stride
        if "low_level" not in features:
            features["low_level"], strides["low_level"] = features["C2"], strides["C2"]
        features["high_level"], strides["high_level"] = x, tracker.current_stride

        config = dict(depths=depths, widths=widths, stem_filters=int(stem_filters),
                      stride_in=stride_in, multi_grid=multi_grid, use_bias=bool(use_bias),
                      bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, pool_padding=pool_padding)
        self._init_backbone(inputs, features, output_stride, strides, config, **kwargs)
        self.depths, self.widths, self.stem_filters = depths, widths, int(stem_filters)
        self.stride_in, self.multi_grid, self.use_bias = stride_in, multi_grid, bool(use_bias)
        self.bn_epsilon, self.bn_momentum, self.pool_padding = bn_epsilon, bn_momentum, pool_padding


def _bottleneck(x, width, name, *, stride, rate, stride_in, use_bias, first, bn_epsilon,
                bn_momentum):
    out_filters = 4 * width
    in_filters = x.shape[-1]
    stride_1x1 = stride if stride_in == "1x1" else 1
    stride_3x3 = 1 if stride_in == "1x1" else stride
    if first or in_filters != out_filters:
        shortcut = AtrousConv2D(out_filters, 1, strides=stride, use_bias=use_bias,
                                name=name + "_0_conv")(x)
        shortcut = batch_norm(name + "_0_bn", bn_epsilon, bn_momentum)(shortcut)
    elif stride > 1:
        shortcut = keras.layers.MaxPooling2D(1, strides=stride, data_format="channels_last",
                                             name=name + "_0_pool")(x)
    else:
        shortcut = x
    y = AtrousConv2D(width, 1, strides=stride_1x1, use_bias=use_bias, name=name + "_1_conv")(x)
    y = batch_norm(name + "_1_bn", bn_epsilon, bn_momentum)(y)
    y = keras.layers.Activation("relu", name=name + "_1_relu")(y)
    y = AtrousConv2D(width, 3, strides=stride_3x3, rate=rate, use_bias=use_bias,
                     name=name + "_2_conv")(y)
    y = batch_norm(name + "_2_bn", bn_epsilon, bn_momentum)(y)
    y = keras.layers.Activation("relu", name=name + "_2_relu")(y)
    y = AtrousConv2D(out_filters, 1, use_bias=use_bias, name=name + "_3_conv")(y)
    y = batch_norm(name + "_3_bn", bn_epsilon, bn_momentum)(y)
    y = keras.layers.Add(name=name + "_add")([shortcut, y])
    return keras.layers.Activation("relu", name=name + "_out")(y)


LAYOUT_DEFAULTS = {
    # keras.applications / Caffe: stride in 1x1, conv biases, eps 1.001e-5.
    "1x1": dict(stride_in="1x1", use_bias=True, bn_epsilon=1.001e-5),
    # torchvision V1.5: stride in 3x3, no biases, eps 1e-5.
    "3x3": dict(stride_in="3x3", use_bias=False, bn_epsilon=1e-5),
    # TF-slim resnet_v1: stride in the last unit's 3x3, no biases, SAME pool.
    "last_3x3": dict(stride_in="last_3x3", use_bias=False, bn_epsilon=1e-5, pool_padding="same"),
}


def _builder(depth_name, layout):
    def build(output_stride=32, **kwargs):
        config = dict(LAYOUT_DEFAULTS[layout])
        config.update(kwargs)
        config.setdefault("depths", DEPTHS[depth_name])
        return ResNetBackbone(output_stride=output_stride, **config)

    return build


resnet50 = _builder("resnet50", "1x1")
resnet101 = _builder("resnet101", "1x1")
resnet50_v1_5 = _builder("resnet50", "3x3")
resnet101_v1_5 = _builder("resnet101", "3x3")
resnet50_slim = _builder("resnet50", "last_3x3")
resnet101_slim = _builder("resnet101", "last_3x3")
for _fn, _doc in [
    (resnet50, "ResNet-50, stride in the 1x1 conv (Caffe/MSRA, keras.applications)."),
    (resnet101, "ResNet-101, stride in the 1x1 conv (Caffe/MSRA, keras.applications, DeepLab v2)."),
    (resnet50_v1_5, "ResNet-50 V1.5, stride in the 3x3 conv (torchvision)."),
    (resnet101_v1_5, "ResNet-101 V1.5, stride in the 3x3 conv (torchvision)."),
    (resnet50_slim, "ResNet-50 v1, stride in the last unit's 3x3 (TF-slim)."),
    (resnet101_slim, "ResNet-101 v1, stride in the last unit's 3x3 (TF-slim)."),
]:
    _fn.__doc__ = _doc + "\n\nArgs: output_stride (8, 16, 32) and any `ResNetBackbone` argument."
