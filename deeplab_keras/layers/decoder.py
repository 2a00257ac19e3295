"""The DeepLab v3+ decoder."""

import keras
from keras import ops

from deeplab_keras.layers.conv_bn import ConvBN
from deeplab_keras.ops.resize import resize_bilinear
from deeplab_keras.ops.resize import spatial_size


@keras.saving.register_keras_serializable(package="deeplab_keras")
class DeepLabV3PlusDecoder(keras.layers.Layer):
    """Decoder of DeepLab v3+ (Chen et al., ECCV 2018, Sec. 3.1).

    Called as `decoder([aspp_features, low_level_features])`: the low-level
    features (output stride 4) are projected to `low_level_filters` (48) by a
    1x1 conv + BN + ReLU, the ASPP output is bilinearly upsampled to their
    size, both are concatenated and refined by two 3x3 conv + BN + ReLU
    (`filters` each, optionally depthwise separable).

    Args:
        filters: channels of the two 3x3 convs (256).
        low_level_filters: channels of the low-level projection (48).
        separable: depthwise-separable 3x3 convs (TF's Xception-65 models).
        align_corners: TF1 resize semantics for the upsampling.
        bn_epsilon: batch-norm epsilon.
        bn_momentum: batch-norm momentum.

    Example:

    ```python
    decoder = deeplab_keras.layers.DeepLabV3PlusDecoder()
    y = decoder([keras.ops.zeros((1, 33, 33, 256)), keras.ops.zeros((1, 129, 129, 256))])
    y.shape  # (1, 129, 129, 256)
    ```
    """

    def __init__(self, filters=256, low_level_filters=48, separable=False, align_corners=False,
                 bn_epsilon=1e-5, bn_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.low_level_filters = int(filters), int(low_level_filters)
        self.separable, self.align_corners = bool(separable), bool(align_corners)
        self.bn_epsilon, self.bn_momentum = float(bn_epsilon), float(bn_momentum)
        bn = dict(bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum)
        self.low_level_projection = ConvBN(self.low_level_filters, 1, name="feature_projection0",
                                           **bn)
        self.conv1 = ConvBN(self.filters, 3, separable=self.separable, name="decoder_conv0", **bn)
        self.conv2 = ConvBN(self.filters, 3, separable=self.separable, name="decoder_conv1", **bn)

    def build(self, input_shape):
        high_shape, low_shape = (tuple(s) for s in input_shape)
        self.low_level_projection.build(low_shape)
        concat = low_shape[:-1] + (high_shape[-1] + self.low_level_filters,)
        self.conv1.build(concat)
        self.conv2.build(low_shape[:-1] + (self.filters,))

    def call(self, inputs, training=None):
        high, low = inputs
        low = self.low_level_projection(low, training=training)
        high = resize_bilinear(high, spatial_size(low), self.align_corners)
        y = ops.concatenate([ops.cast(high, low.dtype), low], axis=-1)
        y = self.conv1(y, training=training)
        return self.conv2(y, training=training)

    def compute_output_shape(self, input_shape):
        low_shape = input_shape[1]
        return tuple(low_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "low_level_filters": self.low_level_filters,
                       "separable": self.separable, "align_corners": self.align_corners,
                       "bn_epsilon": self.bn_epsilon, "bn_momentum": self.bn_momentum})
        return config
