"""DeepLab v3 (Chen et al., arXiv:1706.05587)."""

import keras

from deeplab_keras.layers.aspp import ASPP
from deeplab_keras.layers.aspp import aspp_rates
from deeplab_keras.layers.atrous_conv import AtrousConv2D
from deeplab_keras.layers.conv_bn import ConvBN
from deeplab_keras.models import base

HEADS = ("deeplab", "torchvision")


def build_head(features, head, aspp_kwargs, bn_epsilon, name_prefix=""):
    """ASPP (+ the torchvision 3x3 conv) + 1x1 classifier on `features`."""
    if head not in HEADS:
        raise ValueError(f"`head` must be one of {HEADS}; received {head!r}.")
    x = ASPP(bn_epsilon=bn_epsilon, name=name_prefix + "aspp", **aspp_kwargs)(features)
    if head == "torchvision":
        x = ConvBN(aspp_kwargs.get("filters", 256), 3, bn_epsilon=bn_epsilon,
                   name=name_prefix + "head_conv")(x)
    return x


def classifier(x, num_classes, name="classifier"):
    if int(num_classes) < 1:
        raise ValueError(f"`num_classes` must be >= 1; received {num_classes}.")
    return AtrousConv2D(int(num_classes), 1, use_bias=True, name=name)(x)


@keras.saving.register_keras_serializable(package="deeplab_keras")
class DeepLabV3(base.DeepLabModel):
    """DeepLab v3: atrous backbone + ASPP with image pooling.

    Takes RGB float images in 0..255 of any size, normalises them inside and
    returns logits at the input resolution (or at the output stride with
    `upsample_logits=False`).

    Args:
        backbone: a name from `deeplab_keras.backbones.list_backbones()` or a
            `Backbone` instance.
        output_stride: 8, 16 or 32 (ignored-and-checked for an instance).
        num_classes: number of classes, background included.
        aspp_filters: channels of the ASPP (256).
        aspp_rates: atrous rates; None picks (6, 12, 18) at OS 16 and
            (12, 24, 36) at OS 8 (torchvision's head always uses 12/24/36).
        image_pooling: ASPP image-level branch.
        separable: depthwise-separable ASPP convs.
        aspp_dropout: dropout after the ASPP projection; None gives 0.1 (TF),
            or 0.5 with the torchvision head.
        pooling_first: concatenate the image-pooling branch first (TF order).
        head: "deeplab" (ASPP -> 1x1 classifier) or "torchvision" (ASPP ->
            3x3 conv 256 + BN + ReLU -> 1x1 classifier).
        bn_epsilon: batch-norm epsilon of the head.
        mean, std, channel_order: input normalisation (see
            `ImageNormalization`); defaults are ImageNet statistics, RGB.
        align_corners: TF1 resize semantics for the final upsampling.
        upsample_logits: return logits at input size (True) or output stride.
        backbone_kwargs: extra arguments when `backbone` is a name (e.g.
            tiny `depths`/`widths` for tests, `multi_grid`).

    Example:

    ```python
    model = deeplab_keras.models.DeepLabV3(backbone="resnet101", output_stride=8, num_classes=21)
    logits = model.predict(images)  # images: float32 [B, H, W, 3] in 0..255
    labels = logits.argmax(-1)
    ```
    """

    def __init__(self, backbone="resnet101_v1_5", output_stride=16, num_classes=21,
                 aspp_filters=256, aspp_rates=None, image_pooling=True, separable=False,
                 aspp_dropout=None, pooling_first=False, head="deeplab", bn_epsilon=1e-5,
                 mean=base.IMAGENET_MEAN, std=base.IMAGENET_STD, channel_order="rgb",
                 align_corners=False, upsample_logits=True, backbone_kwargs=None, **kwargs):
        backbone = base.resolve_backbone(backbone, output_stride, backbone_kwargs, "DeepLabV3")
        output_stride = backbone.output_stride
        if aspp_rates is None:
            aspp_rates = (12, 24, 36) if head == "torchvision" else aspp_rates_for(output_stride)
        if aspp_dropout is None:
            aspp_dropout = 0.5 if head == "torchvision" else 0.1
        aspp_kwargs = dict(filters=aspp_filters, rates=tuple(aspp_rates),
                           image_pooling=image_pooling, separable=separable,
                           dropout=aspp_dropout, pooling_first=pooling_first)
        images = base.image_input()
        x = base.normalize(images, mean, std, channel_order)
        features = backbone(x)
        y = build_head(features["high_level"], head, aspp_kwargs, bn_epsilon)
        logits = classifier(y, num_classes)
        outputs = base.finish_logits(logits, images, upsample_logits, align_corners)
        config = dict(backbone=backbone, output_stride=output_stride, num_classes=num_classes,
                      aspp_filters=aspp_filters, aspp_rates=tuple(aspp_rates),
                      image_pooling=image_pooling, separable=separable,
                      aspp_dropout=aspp_dropout, pooling_first=pooling_first, head=head,
                      bn_epsilon=bn_epsilon, mean=tuple(mean), std=tuple(std),
                      channel_order=channel_order, align_corners=align_corners,
                      upsample_logits=upsample_logits)
        self._init_model(images, outputs, config, backbone=backbone, **kwargs)


def aspp_rates_for(output_stride):
    """Default ASPP rates; at OS 32 there is no published choice, so use OS 16's halved."""
    if output_stride == 32:
        return (3, 6, 9)
    return aspp_rates(output_stride)
