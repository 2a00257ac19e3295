"""Copy torchvision DeepLabV3-ResNet weights into `deeplab_keras` models.

Works from a plain `{name: numpy array}` state dict, so torch is not needed
to convert (reading a `.pth` file safely is the registry's job).
"""

import re

import numpy as np

from deeplab_keras.convert.common import ConversionError
from deeplab_keras.convert.common import ConversionReport
from deeplab_keras.convert.common import assign
from deeplab_keras.convert.common import bn_variables
from deeplab_keras.convert.common import check_complete

_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")
_BACKBONE_CONV = re.compile(r"^backbone\.layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.[01])\.")


def _conv_kernel(value):
    """OIHW (torch) -> HWIO (keras)."""
    return np.transpose(np.asarray(value), (2, 3, 1, 0))


def from_torchvision(model, state_dict):
    """Copies `torchvision.models.segmentation.deeplabv3_resnet{50,101}` weights.

    The target must be a `DeepLabV3` with a V1.5 ResNet backbone
    (`backbone="resnet101_v1_5"` or `"resnet50_v1_5"`), `head="torchvision"`
    and the same `num_classes`. `aux_classifier.*` tensors and BN
    `num_batches_tracked` counters have no counterpart; they are listed in
    `report.skipped`. Every other tensor is mapped exactly once and every
    target weight is filled, or `ConversionError` is raised.

    Args:
        model: the `deeplab_keras.models.DeepLabV3` to fill.
        state_dict: mapping of torchvision names to arrays (numpy or
            anything `np.asarray` accepts).

    Returns:
        A `ConversionReport`.

    Example:

    ```python
    tv = torchvision.models.segmentation.deeplabv3_resnet101(weights=None, aux_loss=False)
    sd = {k: v.numpy() for k, v in tv.state_dict().items()}
    model = deeplab_keras.models.DeepLabV3(backbone="resnet101_v1_5", output_stride=8,
                                           head="torchvision", num_classes=21)
    report = deeplab_keras.convert.from_torchvision(model, sd)
    ```
    """
    backbone = getattr(model, "backbone", None)
    if backbone is None or getattr(backbone, "stride_in", None) != "3x3":
        raise ConversionError(
            "from_torchvision needs a DeepLabV3 with a torchvision-layout ResNet "
            "(backbone='resnet101_v1_5' or 'resnet50_v1_5').")
    if model.get_config().get("head") != "torchvision":
        raise ConversionError("from_torchvision needs DeepLabV3(head='torchvision').")
    report = ConversionReport()
    aspp = model.get_layer("aspp")
    head_conv = model.get_layer("head_conv")
    classifier = model.get_layer("classifier")
    pooling_index = len(aspp.atrous_branches) + 1
    for name, value in state_dict.items():
        if name.endswith("num_batches_tracked"):
            report.skipped[name] = "BN batch counter: Keras BN has no counterpart"
            continue
        if name.startswith("aux_classifier."):
            report.skipped[name] = "auxiliary FCN head: not part of DeepLabV3 inference"
            continue
        target = _target(name, backbone, aspp, head_conv, classifier, pooling_index)
        if target is None:
            raise ConversionError(f"torchvision tensor {name!r} has no counterpart in the model.")
        variable, is_kernel = target
        assign(variable, _conv_kernel(value) if is_kernel else value, name, report)
    check_complete(model, report, "from_torchvision")
    return report


def _bn_var(bn_layer, field):
    return bn_variables(bn_layer)[_BN_FIELDS.index(field)]


def _conv_bn_target(conv_bn, part, field):
    """`part` "conv" or "bn" of a `ConvBN`; returns (variable, is_kernel)."""
    if part == "conv":
        if field != "weight":
            return None
        return conv_bn.conv.kernel, True
    return _bn_var(conv_bn.bn, field), False


def _target(name, backbone, aspp, head_conv, classifier, pooling_index):
    field = name.rsplit(".", 1)[1]
    if name.startswith("backbone."):
        return _backbone_target(name, field, backbone)
    m = re.match(r"^classifier\.0\.convs\.(\d+)\.(\d)\.", name)
    if m:
        branch, idx = int(m.group(1)), int(m.group(2))
        if branch == 0:
            block, part = aspp.conv_1x1, {0: "conv", 1: "bn"}.get(idx)
        elif branch == pooling_index:
            # ASPPPooling = [AdaptiveAvgPool2d, Conv2d, BatchNorm2d, ReLU]
            block, part = aspp.pooling_conv, {1: "conv", 2: "bn"}.get(idx)
        else:
            block, part = aspp.atrous_branches[branch - 1], {0: "conv", 1: "bn"}.get(idx)
        return None if part is None or block is None else _conv_bn_target(block, part, field)
    m = re.match(r"^classifier\.0\.project\.(\d)\.", name)
    if m:
        part = {0: "conv", 1: "bn"}.get(int(m.group(1)))
        return None if part is None else _conv_bn_target(aspp.projection, part, field)
    if name.startswith("classifier.1."):
        return _conv_bn_target(head_conv, "conv", field)
    if name.startswith("classifier.2."):
        return _conv_bn_target(head_conv, "bn", field)
    if name.startswith("classifier.4."):
        return (classifier.kernel, True) if field == "weight" else (classifier.bias, False)
    return None


def _backbone_target(name, field, backbone):
    if name.startswith("backbone.conv1."):
        return backbone.get_layer("conv1_conv").kernel, True
    if name.startswith("backbone.bn1."):
        return _bn_var(backbone.get_layer("conv1_bn"), field), False
    m = _BACKBONE_CONV.match(name)
    if not m:
        return None
    stage, unit, part = int(m.group(1)), int(m.group(2)), m.group(3)
    prefix = f"conv{stage + 1}_block{unit + 1}"
    if part == "downsample.0":
        return backbone.get_layer(prefix + "_0_conv").kernel, True
    if part == "downsample.1":
        return _bn_var(backbone.get_layer(prefix + "_0_bn"), field), False
    index = part[-1]
    if part.startswith("conv"):
        return backbone.get_layer(f"{prefix}_{index}_conv").kernel, True
    return _bn_var(backbone.get_layer(f"{prefix}_{index}_bn"), field), False
