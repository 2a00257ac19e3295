"""Copy keras.applications weights (ResNet50/101, VGG16) into our backbones."""

from deeplab_keras.convert.common import ConversionError
from deeplab_keras.convert.common import ConversionReport
from deeplab_keras.convert.common import assign
from deeplab_keras.convert.common import backbone_of
from deeplab_keras.convert.common import check_complete


def from_keras_applications(model, keras_model):
    """Copies a keras.applications model's weights into `model`'s backbone.

    Layer names match one to one (`conv2_block1_1_conv`, `block1_conv1`,
    ...), so weights are copied by layer name. Every weight of the source
    must land; top layers (`predictions`, `fc1`, `fc2`, `flatten`) are
    skipped and listed in the report.

    Args:
        model: a `deeplab_keras` model with a `backbone`, or a `Backbone`.
            For ResNet use the stride-in-1x1 layout with conv biases
            (`deeplab_keras.backbones.resnet101()`), for VGG16
            `vgg16_largefov`.
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
    target = backbone_of(model)
    report = ConversionReport()
    target_layers = {layer.name: layer for layer in target.layers}
    for layer in keras_model.layers:
        if not layer.weights:
            continue
        if layer.name in ("predictions", "fc1", "fc2"):
            for w in layer.weights:
                report.skipped[w.path] = (
                    "classification top: no counterpart in a segmentation model")
            continue
        dest = target_layers.get(layer.name)
        if dest is None or len(dest.weights) != len(layer.weights):
            raise ConversionError(
                f"keras.applications layer {layer.name!r} has no counterpart with the same "
                f"weights in {target.name}. Use the stride-in-1x1 ResNet with conv biases "
                "(`backbones.resnet101()`) or `backbones.vgg16_largefov()`."
            )
        for src, dst in zip(_ordered(layer), _ordered(dest)):
            assign(dst, src.numpy(), src.path, report)
    check_complete(target, report, "from_keras_applications")
    return report


def _ordered(layer):
    names = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")
    weights = {w.name: w for w in layer.weights}
    return [weights[n] for n in names if n in weights]
