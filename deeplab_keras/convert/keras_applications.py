"""Copy keras.applications ImageNet weights (ResNet50/101, VGG16, MobileNetV2) into our
backbones."""

from deeplab_keras.convert.common import ConversionError
from deeplab_keras.convert.common import ConversionReport
from deeplab_keras.convert.common import assign
from deeplab_keras.convert.common import backbone_of
from deeplab_keras.convert.common import check_complete

_WEIGHT_ORDER = ("kernel", "depthwise_kernel", "bias", "gamma", "beta", "moving_mean",
                 "moving_variance")


def from_keras_applications(model, keras_model):
    """Copies a keras.applications model's weights into `model`'s backbone.

    ResNet and VGG layer names match ours one to one (`conv2_block1_1_conv`, `block1_conv1`,
    ...); MobileNetV2's are translated to our TF-slim scopes (`block_3_expand` ->
    `expanded_conv_3_expand`). Every weight of the source must land; classification tops
    (`predictions`, `fc1`, `fc2`) and MobileNetV2's final 1x1/1280 conv (not part of DeepLab's
    MobileNetV2) are skipped and listed in the report.

    Args:
        model: a `deeplab_keras` model with a `backbone`, or a `Backbone`.
            For ResNet use the stride-in-1x1 layout with conv biases
            (`deeplab_keras.backbones.resnet101()`), for VGG16
            `vgg16_largefov`, for MobileNetV2 `mobilenetv2(alpha=1.0)`.
        keras_model: e.g. `keras.applications.ResNet101(include_top=False)`.

    Returns:
        A `ConversionReport`.

    Example:

    ```python
    source = keras.applications.ResNet101(weights="imagenet", include_top=False)
    backbone = deeplab_keras.backbones.resnet101(output_stride=16)
    deeplab_keras.convert.from_keras_applications(backbone, source)
    ```
    """
    from deeplab_keras.backbones import MobileNetV2Backbone

    target = backbone_of(model)
    is_mobilenet = isinstance(target, MobileNetV2Backbone)
    report = ConversionReport()
    target_layers = {layer.name: layer for layer in target.layers}
    for layer in keras_model.layers:
        if not layer.weights:
            continue
        skip = _skip_reason(layer.name, is_mobilenet)
        if skip:
            for w in layer.weights:
                report.skipped[w.path] = skip
            continue
        name = _mobilenetv2_name(layer.name) if is_mobilenet else layer.name
        dest = target_layers.get(name or "")
        if dest is None or len(dest.weights) != len(layer.weights):
            raise ConversionError(
                f"keras.applications layer {layer.name!r} has no counterpart with the same "
                f"weights in {target.name}. Use the stride-in-1x1 ResNet with conv biases "
                "(`backbones.resnet101()`), `backbones.vgg16_largefov()` or "
                "`backbones.mobilenetv2(alpha=1.0)`.")
        for src, dst in zip(_ordered(layer), _ordered(dest)):
            assign(dst, src.numpy(), src.path, report)
    check_complete(target, report, "from_keras_applications")
    return report


def _skip_reason(name, is_mobilenet):
    if name in ("predictions", "fc1", "fc2"):
        return "classification top: no counterpart in a segmentation model"
    if is_mobilenet and name in ("Conv_1", "Conv_1_bn"):
        return "final 1x1/1280 conv: not part of DeepLab's MobileNetV2"
    return None


def _mobilenetv2_name(name):
    """keras.applications MobileNetV2 layer name -> ours (TF-slim scopes), or None."""
    if name == "Conv1":
        return "Conv"
    if name == "bn_Conv1":
        return "Conv_BatchNorm"
    if name.startswith("expanded_conv_"):
        block, rest = "expanded_conv", name[len("expanded_conv_"):]
    elif name.startswith("block_"):
        index, rest = name[len("block_"):].split("_", 1)
        block = f"expanded_conv_{int(index)}"
    else:
        return None
    if rest.endswith("_BN"):
        rest = rest[: -len("_BN")] + "_BatchNorm"
    return f"{block}_{rest}"


def _ordered(layer):
    weights = {w.name: w for w in layer.weights}
    return [weights[n] for n in _WEIGHT_ORDER if n in weights]


__all__ = ["from_keras_applications"]
