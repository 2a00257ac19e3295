"""ImageNet backbone weights from keras.applications: which backbones they fit, the input
normalisation they expect, and `build_model(..., backbone_weights="imagenet")`.

Registers `backbone_weights="imagenet"` with the models (`models.base.register_backbone_weights`):
every model constructor, `models.build` and `load_model` then accept it. The weights are applied
after the model is built (never part of its config, so a reloaded `.keras` file never downloads
anything).

Example:

```python
from deeplab_keras import weights

model = weights.build_model("deeplabv3", 11, backbone="resnet101", backbone_weights="imagenet")
```
"""

import logging

import numpy as np

from deeplab_keras.models import base as model_base
from deeplab_keras.models import factory
from deeplab_keras.models.base import unwrap
from deeplab_keras.weights import download
from deeplab_keras.weights.records import BACKBONE_WEIGHTS

logger = logging.getLogger("deeplab_keras.weights")

BACKBONE_WEIGHTS_CHOICES = (None, "imagenet")
# An architecture name implies torchvision's ResNet layout; keras.applications' weights need
# the same depth with the stride in the 1x1 conv and conv biases.
_KERAS_LAYOUT = {"resnet50_v1_5": "resnet50", "resnet101_v1_5": "resnet101"}
_FAMILY_DEFAULT_BACKBONE = {"DeepLabV3": "resnet101_v1_5", "DeepLabV3Plus": "xception65",
                            "DeepLabV2": "resnet101", "DeepLabV1": "vgg16"}


def check_choice(backbone_weights):
    """ValueError unless `backbone_weights` is None or "imagenet"."""
    if backbone_weights not in BACKBONE_WEIGHTS_CHOICES:
        raise ValueError(f"backbone_weights must be None or 'imagenet'; received "
                         f"{backbone_weights!r}.")
    return backbone_weights


def build_model(architecture, num_classes, *, backbone=None, backbone_weights=None, **kwargs):
    """Builds any DeepLab architecture (`models.build`), optionally with ImageNet backbone
    weights.

    Args:
        architecture: a family ("deeplabv1", "deeplabv2", "deeplabv3",
            "deeplabv3plus"), a class name ("DeepLabV3") or a
            `models.list_architectures()` name ("deeplabv3_resnet101").
        num_classes: output classes, background included.
        backbone: backbone name (overrides the architecture's). With ImageNet
            weights, a name such as "deeplabv3_resnet101" implies the
            keras.applications layout of that depth ("resnet101").
        backbone_weights: None or "imagenet" (keras.applications no-top
            weights for backbones "resnet50", "resnet101", "vgg16_largefov"
            [DeepLab v1/v2 "vgg16"] and "mobilenetv2"). The model's input
            normalisation is set to what those weights expect unless `mean`,
            `std` or `channel_order` are given.
        **kwargs: any constructor argument of the model class.

    Example:

    ```python
    model = build_model("deeplabv3", 11, backbone="resnet101", backbone_weights="imagenet")
    ```
    """
    check_choice(backbone_weights)
    cls, fixed = factory.resolve(architecture)
    if backbone is not None:
        kwargs["backbone"] = backbone
    elif backbone_weights == "imagenet" and "backbone" in fixed:
        kwargs["backbone"] = _KERAS_LAYOUT.get(fixed["backbone"], fixed["backbone"])
    kwargs = {**fixed, **kwargs}
    if backbone_weights is not None:
        kwargs["backbone_weights"] = backbone_weights
    return factory.build(cls.__name__, num_classes, **kwargs)


def imagenet_kwargs(class_name, kwargs):
    """Constructor arguments for ImageNet weights: their normalisation (unless given) and, for
    a DeepLab v2 ResNet, keras.applications' conv biases and BN epsilon."""
    kwargs = dict(kwargs)
    backbone = kwargs.get("backbone") or _FAMILY_DEFAULT_BACKBONE[class_name]
    key = "vgg16_largefov" if backbone in ("vgg16", "vgg16_largefov") else backbone
    if key not in BACKBONE_WEIGHTS:
        raise ValueError(f"No ImageNet (keras.applications) weights for backbone {backbone!r}; "
                         f"available: {sorted(BACKBONE_WEIGHTS)} (DeepLab v1/v2 call "
                         "VGG-16 'vgg16').")
    if class_name == "DeepLabV2" and key.startswith("resnet"):
        # keras.applications ResNets have conv biases and BN epsilon 1.001e-5.
        kwargs["backbone_kwargs"] = {"use_bias": True, "bn_epsilon": 1.001e-5,
                                     **(kwargs.get("backbone_kwargs") or {})}
    pre = BACKBONE_WEIGHTS[key].preprocessing
    for field in ("mean", "std", "channel_order"):
        kwargs.setdefault(field, getattr(pre, field))
    return kwargs


def load_backbone_weights(model, weights="imagenet", *, progress=True):
    """Loads keras.applications ImageNet no-top weights into `model`'s backbone.

    Supported backbones: "resnet50"/"resnet101" (stride in the 1x1 conv,
    conv biases: keras.applications' layout), VGG-16 LargeFOV and
    MobileNetV2 (alpha 1.0). The model's input normalisation must be what
    the weights expect (see `records.BACKBONE_WEIGHTS`); `build_model(...,
    backbone_weights="imagenet")` sets it.

    Returns:
        The `ConversionReport` (the classification top and MobileNetV2's
        final 1x1/1280 conv are listed as skipped).

    Example:

    ```python
    model = deeplab_keras.models.DeepLabV3(backbone="resnet101", num_classes=21,
                                           mean=(103.939, 116.779, 123.68), std=(1, 1, 1),
                                           channel_order="bgr")
    load_backbone_weights(model, "imagenet")
    ```
    """
    import keras

    from deeplab_keras.convert import common
    from deeplab_keras.convert.keras_applications import from_keras_applications

    if weights != "imagenet":
        raise ValueError(f"load_backbone_weights: only 'imagenet' is available; received "
                         f"{weights!r}.")
    net = unwrap(model)
    backbone = common.backbone_of(net)
    key = imagenet_backbone_key(backbone)
    spec = BACKBONE_WEIGHTS[key]
    check_normalisation(net, spec.preprocessing, f"ImageNet weights of {key!r}")
    path = download.fetch(spec.url, md5=spec.md5, name=f"{key}.imagenet",
                          filename=spec.filename, subdir="keras_applications", progress=progress)
    app = getattr(keras.applications, spec.application)(
        weights=None, include_top=False, input_shape=(None, None, 3), **spec.application_kwargs)
    try:
        app.load_weights(path)
    except Exception as e:
        raise ValueError(f"{path}: not a keras.applications {spec.application} no-top weight "
                         f"file ({e}). Delete it and retry.") from e
    report = from_keras_applications(backbone, app)
    logger.info("ImageNet weights of %s loaded into %s: %s.", key, backbone.name,
                report.summary())
    return report


def imagenet_backbone_key(backbone):
    """The `records.BACKBONE_WEIGHTS` key matching `backbone`, or ValueError saying why not."""
    from deeplab_keras import backbones

    if isinstance(backbone, backbones.ResNetBackbone):
        depth = {(3, 4, 6, 3): "resnet50", (3, 4, 23, 3): "resnet101"}.get(backbone.depths)
        if (depth and backbone.stride_in == "1x1" and backbone.use_bias
                and backbone.widths == (64, 128, 256, 512) and backbone.stem_filters == 64):
            return depth
        raise ValueError(
            "keras.applications ImageNet weights fit ResNet-50/101 with the stride in the 1x1 "
            "conv and conv biases (backbone='resnet50' or 'resnet101'); this backbone has "
            f"depths={backbone.depths}, widths={backbone.widths}, stride_in="
            f"{backbone.stride_in!r}, use_bias={backbone.use_bias}. For DeepLab v2 use "
            "build_model('deeplabv2', n, backbone='resnet101', backbone_weights='imagenet'), "
            "which adds the biases.")
    if isinstance(backbone, backbones.VGG16LargeFOVBackbone):
        if backbone.widths == (64, 128, 256, 512, 512):
            return "vgg16_largefov"
        raise ValueError(f"ImageNet VGG-16 weights need the full widths; got {backbone.widths}.")
    if isinstance(backbone, backbones.MobileNetV2Backbone):
        if backbone.alpha == 1.0:
            return "mobilenetv2"
        raise ValueError(f"ImageNet MobileNetV2 weights are registered for alpha=1.0 only; "
                         f"got alpha={backbone.alpha}.")
    raise ValueError(f"No ImageNet weights are registered for {type(backbone).__name__}; "
                     "available: resnet50, resnet101, vgg16_largefov, mobilenetv2 "
                     "(Xception-65's ImageNet checkpoint is a TF1 tarball: not registered).")


def normalisation_layer(model):
    """The `ImageNormalization` layer of a DeepLab model (inside any MSC/CRFRefined)."""
    from deeplab_keras.layers.preprocessing import ImageNormalization

    net = unwrap(model)
    for layer in net.layers:
        if isinstance(layer, ImageNormalization):
            return layer
    raise ValueError(f"{model.name} has no ImageNormalization layer.")


def check_normalisation(model, pre, what):
    """ValueError unless `model` normalises its input as `pre` (a `Preprocessing`) says."""
    layer = normalisation_layer(model)
    ok = (np.allclose(layer.mean, pre.mean) and np.allclose(layer.std, pre.std)
          and layer.channel_order == pre.channel_order)
    if not ok:
        raise ValueError(
            f"{what} expect inputs normalised with mean={pre.mean}, std={pre.std}, "
            f"channel_order={pre.channel_order!r}, but {model.name} normalises with "
            f"mean={layer.mean}, std={layer.std}, channel_order={layer.channel_order!r}. Build "
            "the model with those values (build_model(..., backbone_weights='imagenet') does).")


def _load_imagenet(model):
    return load_backbone_weights(model, "imagenet")


model_base.register_backbone_weights("imagenet", imagenet_kwargs, _load_imagenet)


__all__ = ["build_model", "check_choice", "check_normalisation", "imagenet_backbone_key",
           "imagenet_kwargs", "load_backbone_weights", "normalisation_layer"]
