"""DeepLab v2 (Chen et al., TPAMI 2018) and v1 (ICLR 2015)."""

import keras

from deeplab_keras.layers import preprocessing
from deeplab_keras.layers.aspp_v2 import ASPPV2
from deeplab_keras.layers.aspp_v2 import aspp_v2_rates
from deeplab_keras.models import base

# The Caffe release subtracts this BGR mean and feeds 0..255 BGR images.
CAFFE_BGR_MEAN = preprocessing.CAFFE_DEEPLAB_BGR_MEAN
V2_BACKBONES = {
    "resnet101": ("resnet101", "resnet", dict(use_bias=False, bn_epsilon=1e-5)),
    "resnet50": ("resnet50", "resnet", dict(use_bias=False, bn_epsilon=1e-5)),
    "vgg16": ("vgg16_largefov", "vgg", {}),
}


@keras.saving.register_keras_serializable(package="deeplab_keras")
class DeepLabV2(base.DeepLabModel):
    """DeepLab v2: atrous backbone at output stride 8 + summed ASPP branches.

    Takes RGB float images in 0..255 of any size, normalises them the Caffe
    way (BGR minus mean) by default, and returns logits at input resolution.

    Args:
        backbone: "resnet101" (Caffe layout: stride in the 1x1 conv, no conv
            biases), "resnet50" or "vgg16" (LargeFOV form).
        aspp: "L" (rates 6/12/18/24), "S" (2/4/8/12) or "LargeFOV" (12).
        num_classes: number of classes, background included.
        output_stride: 8 (the paper); ResNet also allows 16 and 32.
        hidden_filters: fc6/fc7 width of VGG branches (1024).
        dropout: dropout in VGG branches (0.5).
        mean, std, channel_order: input normalisation (Caffe defaults).
        align_corners: TF1 resize semantics for the upsampling.
        upsample_logits: logits at input size (True) or at the output stride.
        backbone_kwargs: extra backbone arguments (e.g. tiny widths).

    Example:

    ```python
    model = deeplab_keras.models.DeepLabV2(backbone="resnet101", aspp="L", num_classes=21)
    model.output_shape  # (None, None, None, 21)
    ```
    """

    def __init__(self, backbone="resnet101", aspp="L", num_classes=21, output_stride=8,
                 hidden_filters=1024, dropout=0.5, mean=CAFFE_BGR_MEAN, std=(1.0, 1.0, 1.0),
                 channel_order="bgr", align_corners=False, upsample_logits=True,
                 backbone_kwargs=None, **kwargs):
        if backbone not in V2_BACKBONES:
            raise ValueError(f"DeepLabV2: `backbone` must be one of {sorted(V2_BACKBONES)}; "
                             f"received {backbone!r}.")
        backbone_name, branch, defaults = V2_BACKBONES[backbone]
        rates = aspp_v2_rates(aspp)
        net = base.resolve_backbone(backbone_name, output_stride,
                                    {**defaults, **(backbone_kwargs or {})}, "DeepLabV2")
        images = base.image_input()
        x = base.normalize(images, mean, std, channel_order)
        features = net(x)
        logits = ASPPV2(num_classes, rates=rates, branch=branch, hidden_filters=hidden_filters,
                        dropout=dropout, name="aspp_v2")(features["high_level"])
        outputs = base.finish_logits(logits, images, upsample_logits, align_corners)
        config = dict(backbone=backbone, aspp=aspp, num_classes=num_classes,
                      output_stride=output_stride, hidden_filters=hidden_filters,
                      dropout=dropout, mean=tuple(mean), std=tuple(std),
                      channel_order=channel_order, align_corners=align_corners,
                      upsample_logits=upsample_logits, backbone_kwargs=backbone_kwargs)
        self._init_model(images, outputs, config, backbone=net, **kwargs)


@keras.saving.register_keras_serializable(package="deeplab_keras")
class DeepLabV1(DeepLabV2):
    """DeepLab v1, VGG-16 LargeFOV (Chen et al., ICLR 2015).

    VGG-16 at output stride 8 with fc6 a 3x3 atrous conv (rate 12, 1024
    channels), fc7 1x1 1024, fc8 to the classes; dropout 0.5.

    Args:
        num_classes: number of classes, background included.
        hidden_filters, dropout, mean, std, channel_order, align_corners,
        upsample_logits, backbone_kwargs: as in `DeepLabV2`.

    Example:

    ```python
    model = deeplab_keras.models.DeepLabV1(num_classes=21)
    ```
    """

    def __init__(self, num_classes=21, backbone="vgg16", aspp="LargeFOV", **kwargs):
        if backbone != "vgg16" or aspp != "LargeFOV":
            raise ValueError("DeepLabV1 is VGG-16 LargeFOV; use DeepLabV2 for "
                             f"backbone={backbone!r}, aspp={aspp!r}.")
        super().__init__(backbone=backbone, aspp=aspp, num_classes=num_classes, **kwargs)
