"""DeepLab v3+ (Chen et al., ECCV 2018): DeepLab v3 + a decoder."""

import keras

from deeplab_keras.layers import preprocessing
from deeplab_keras.layers.decoder import DeepLabV3PlusDecoder
from deeplab_keras.models import base
from deeplab_keras.models.deeplab_v3 import aspp_rates_for
from deeplab_keras.models.deeplab_v3 import build_head
from deeplab_keras.models.deeplab_v3 import classifier


@keras.saving.register_keras_serializable(package="deeplab_keras")
class DeepLabV3Plus(base.DeepLabModel):
    """DeepLab v3+: atrous backbone, ASPP, and a decoder on stride-4 features.

    Takes RGB float images in 0..255 of any size and returns logits at the
    input resolution (at stride 4 with `upsample_logits=False`).

    Args:
        backbone: backbone name or `Backbone` instance (default "xception65").
        output_stride: 8, 16 or 32.
        num_classes: number of classes, background included.
        aspp_filters: ASPP channels (256).
        aspp_rates: None for (6, 12, 18) at OS 16, (12, 24, 36) at OS 8.
        image_pooling: ASPP image-level branch.
        separable: depthwise-separable ASPP and decoder convs (TF's
            Xception-65 models).
        aspp_dropout: dropout after the ASPP projection (0.1).
        pooling_first: image-pooling branch first in the concatenation.
        decoder_filters: channels of the decoder's 3x3 convs (256).
        low_level_filters: low-level projection channels (48).
        bn_epsilon: batch-norm epsilon of head and decoder.
        mean, std, channel_order: input normalisation; defaults map 0..255 to
            -1..1 as TF research/deeplab does.
        align_corners: TF1 resize semantics (decoder and final upsampling).
        upsample_logits: logits at input size (True) or at stride 4.
        backbone_kwargs: extra arguments when `backbone` is a name.

    Example:

    ```python
    model = deeplab_keras.models.DeepLabV3Plus(backbone="xception65", output_stride=16,
                                               num_classes=21)
    logits = model.predict(images)  # float32 [B, H, W, 3] in 0..255 -> [B, H, W, 21]
    ```
    """

    def __init__(self, backbone="xception65", output_stride=16, num_classes=21, aspp_filters=256,
                 aspp_rates=None, image_pooling=True, separable=False, aspp_dropout=0.1,
                 pooling_first=False, decoder_filters=256, low_level_filters=48,
                 bn_epsilon=1e-5, mean=preprocessing.UNIT_RANGE_MEAN,
                 std=preprocessing.UNIT_RANGE_STD, channel_order="rgb", align_corners=False,
                 upsample_logits=True,
                 backbone_kwargs=None, **kwargs):
        backbone = base.resolve_backbone(backbone, output_stride, backbone_kwargs, "DeepLabV3Plus")
        output_stride = backbone.output_stride
        aspp_rates = tuple(aspp_rates) if aspp_rates is not None else aspp_rates_for(output_stride)
        aspp_kwargs = dict(filters=aspp_filters, rates=aspp_rates, image_pooling=image_pooling,
                           separable=separable, dropout=aspp_dropout, pooling_first=pooling_first)
        images = base.image_input()
        x = base.normalize(images, mean, std, channel_order)
        features = backbone(x)
        y = build_head(features["high_level"], "deeplab", aspp_kwargs, bn_epsilon)
        y = DeepLabV3PlusDecoder(filters=decoder_filters, low_level_filters=low_level_filters,
                                 separable=separable, align_corners=align_corners,
                                 bn_epsilon=bn_epsilon, name="decoder")(
            [y, features["low_level"]])
        logits = classifier(y, num_classes)
        outputs = base.finish_logits(logits, images, upsample_logits, align_corners)
        config = dict(backbone=backbone, output_stride=output_stride, num_classes=num_classes,
                      aspp_filters=aspp_filters, aspp_rates=aspp_rates,
                      image_pooling=image_pooling, separable=separable,
                      aspp_dropout=aspp_dropout, pooling_first=pooling_first,
                      decoder_filters=decoder_filters, low_level_filters=low_level_filters,
                      bn_epsilon=bn_epsilon, mean=tuple(mean), std=tuple(std),
                      channel_order=channel_order, align_corners=align_corners,
                      upsample_logits=upsample_logits)
        self._init_model(images, outputs, config, backbone=backbone, **kwargs)
