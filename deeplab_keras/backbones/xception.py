"""Xception-65 as modified for DeepLab v3+ (TF research/deeplab `xception_65`).

Layer names are TF-slim's variable scopes with "/" replaced by "_", e.g.
`xception_65/entry_flow/block1/unit_1/xception_module/separable_conv1_depthwise`
becomes `entry_flow_block1_unit_1_xception_module_separable_conv1_depthwise`
(its batch norm `..._depthwise_BatchNorm`), so checkpoints map one to one.
"""

import keras

from deeplab_keras.backbones.base import Backbone
from deeplab_keras.backbones.blocks import batch_norm
from deeplab_keras.backbones.blocks import separable_conv_bn
from deeplab_keras.backbones.output_stride import AtrousTracker
from deeplab_keras.backbones.output_stride import check_output_stride
from deeplab_keras.layers.atrous_conv import AtrousConv2D

# (scope, depth_list, skip_connection_type, activation_fn_in_separable_conv, stride).
# The middle flow has `middle_units` units; every other block has one.
XCEPTION_65_BLOCKS = (
    ("entry_flow_block1", (128, 128, 128), "conv", False, 2),
    ("entry_flow_block2", (256, 256, 256), "conv", False, 2),
    ("entry_flow_block3", (728, 728, 728), "conv", False, 2),
    ("middle_flow_block1", (728, 728, 728), "sum", False, 1),
    ("exit_flow_block1", (728, 1024, 1024), "conv", False, 2),
    ("exit_flow_block2", (1536, 1536, 2048), "none", True, 1),
)
# TF deeplab's decoder end point:
# entry_flow/block2/unit_1/xception_module/separable_conv2_pointwise.
LOW_LEVEL_BLOCK, LOW_LEVEL_CONV = "entry_flow_block2", 1


def _scale(depth, width_multiplier):
    return max(1, int(round(depth * width_multiplier)))


@keras.saving.register_keras_serializable(package="deeplab_keras")
class XceptionBackbone(Backbone):
    """Aligned Xception-65 with atrous separable convolution (Chen et al., ECCV 2018).

    Entry flow: two 3x3 convs (32 stride 2, 64) then three strided Xception
    blocks; middle flow: 16 residual units of three 728-d separable convs;
    exit flow: a strided block (728, 1024, 1024) and a block (1536, 1536,
    2048) with ReLU inside its separable convs and no shortcut. Elsewhere a
    ReLU precedes each separable conv (depthwise 3x3 + BN, pointwise 1x1 +
    BN). Features: "low_level" is entry flow block2's second separable conv
    (stride 4, 256 channels, pre-ReLU, as TF deeplab's decoder uses it);
    "high_level" is the exit flow output (stride `output_stride`, 2048).

    Args:
        output_stride: 8, 16 or 32.
        multi_grid: rates of exit flow block2's three separable convs,
            multiplied by the block rate (TF deeplab's `unit_rate_list`).
        width_multiplier: scales every depth (rounded, at least 1); for
            small test models.
        middle_units: number of middle flow units (16 in Xception-65).
        bn_epsilon: batch-norm epsilon (TF deeplab 1e-3).
        bn_momentum: batch-norm moving-average momentum (TF deeplab trains
            with 0.9997).

    Example:

    ```python
    backbone = deeplab_keras.backbones.xception65(output_stride=16)
    feats = backbone(keras.random.uniform((1, 513, 513, 3)))
    feats["high_level"].shape  # (1, 33, 33, 2048)
    feats["low_level"].shape  # (1, 129, 129, 256)
    ```
    """

    def __init__(self, output_stride=16, multi_grid=(1, 1, 1), width_multiplier=1.0,
                 middle_units=16, bn_epsilon=1e-3, bn_momentum=0.99, **kwargs):
        output_stride = check_output_stride(output_stride, who="XceptionBackbone")
        multi_grid = tuple(int(m) for m in multi_grid)
        if len(multi_grid) != 3 or min(multi_grid) < 1:
            raise ValueError(f"`multi_grid` needs 3 positive ints; received {multi_grid}.")
        if float(width_multiplier) <= 0 or int(middle_units) < 1:
            raise ValueError("`width_multiplier` must be > 0 and `middle_units` >= 1; received "
                             f"{width_multiplier}, {middle_units}.")
        width_multiplier, middle_units = float(width_multiplier), int(middle_units)
        bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)

        inputs = keras.Input((None, None, 3), name="images")
        x = inputs
        for name, depth, stride in (("entry_flow_conv1_1", 32, 2), ("entry_flow_conv1_2", 64, 1)):
            x = AtrousConv2D(_scale(depth, width_multiplier), 3, strides=stride, use_bias=False,
                             name=name)(x)
            x = batch_norm(name + "_BatchNorm", bn_epsilon, bn_momentum)(x)
            x = keras.layers.ReLU(name=name + "_relu")(x)
        features, strides = {"stem": x}, {"stem": 2}

        tracker = AtrousTracker(output_stride, current_stride=2)
        for block, depths, skip, act_inside, stride in XCEPTION_65_BLOCKS:
            depths = tuple(_scale(d, width_multiplier) for d in depths)
            units = middle_units if block.startswith("middle") else 1
            unit_rates = multi_grid if block == "exit_flow_block2" else (1, 1, 1)
            for u in range(units):
                s, rate, _ = tracker.step(stride)
                name = f"{block}_unit_{u + 1}_xception_module"
                x, convs = _xception_module(x, depths, name, skip=skip, stride=s,
                                            rates=tuple(rate * r for r in unit_rates),
                                            act_inside=act_inside, **bn)
                if block == LOW_LEVEL_BLOCK:
                    features["low_level"], strides["low_level"] = convs[LOW_LEVEL_CONV], 4
            features[block], strides[block] = x, tracker.current_stride
        features["high_level"], strides["high_level"] = x, tracker.current_stride

        config = dict(multi_grid=multi_grid, width_multiplier=width_multiplier,
                      middle_units=middle_units, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)
        self._init_backbone(inputs, features, output_stride, strides, config, **kwargs)
        self.multi_grid, self.width_multiplier = multi_grid, width_multiplier
        self.middle_units = middle_units
        self.bn_epsilon, self.bn_momentum = bn_epsilon, bn_momentum


def _xception_module(x, depths, name, *, skip, stride, rates, act_inside, bn_epsilon, bn_momentum):
    """TF deeplab `xception_module`: 3 separable convs (stride on the 3rd) + shortcut.

    Returns the module output and the three separable convs' outputs.
    """
    inputs, residual, convs = x, x, []
    for i, (depth, rate) in enumerate(zip(depths, rates)):
        conv = f"{name}_separable_conv{i + 1}"
        if not act_inside:
            residual = keras.layers.ReLU(name=conv + "_relu")(residual)
        residual = separable_conv_bn(residual, depth, conv, strides=stride if i == 2 else 1,
                                     rate=rate, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum,
                                     depth_activation=act_inside)
        convs.append(residual)
    if skip == "none":
        return residual, convs
    if skip == "conv":
        shortcut = AtrousConv2D(depths[-1], 1, strides=stride, use_bias=False,
                                name=name + "_shortcut")(inputs)
        shortcut = batch_norm(name + "_shortcut_BatchNorm", bn_epsilon, bn_momentum)(shortcut)
    else:
        shortcut = inputs
    return keras.layers.Add(name=name + "_add")([residual, shortcut]), convs


def xception65(output_stride=16, **kwargs):
    """Xception-65 (DeepLab v3+); any `XceptionBackbone` argument may be given."""
    return XceptionBackbone(output_stride=output_stride, **kwargs)
