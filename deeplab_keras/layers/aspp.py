"""Atrous spatial pyramid pooling, DeepLab v3 design (concatenate + project)."""

import keras
from keras import ops

from deeplab_keras.layers.conv_bn import ConvBN

DEFAULT_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}


def aspp_rates(output_stride):
    """DeepLab v3's ASPP rates: (6, 12, 18) at OS 16, doubled at OS 8."""
    if output_stride not in DEFAULT_RATES:
        raise ValueError(
            f"No default ASPP rates for output_stride={output_stride}; pass `rates` "
            f"explicitly (defaults exist for {sorted(DEFAULT_RATES)})."
        )
    return DEFAULT_RATES[output_stride]


@keras.saving.register_keras_serializable(package="deeplab_keras")
class ASPP(keras.layers.Layer):
    """ASPP of DeepLab v3 (Chen et al., arXiv:1706.05587, Sec. 3.3).

    Parallel branches on the backbone's last feature map, each conv + BN +
    ReLU: a 1x1 conv, one 3x3 atrous conv per rate, and image-level pooling
    (global average -> 1x1 conv -> broadcast). They are concatenated and
    projected by a 1x1 conv + BN + ReLU, then dropout.

    Args:
        filters: channels of each branch and of the projection (256).
        rates: atrous rates of the 3x3 branches; (6, 12, 18) at output stride
            16, (12, 24, 36) at 8. `()` gives the 1x1 + image pooling ASPP of
            TF's MobileNetV2 model.
        image_pooling: include the image-level branch.
        separable: depthwise-separable 3x3 branches (TF's Xception-65 models).
        pooling_first: concatenate the pooling branch first (TF
            research/deeplab order) instead of last (torchvision order).
        dropout: dropout rate after the projection (TF 0.1, torchvision 0.5).
        bn_epsilon: batch-norm epsilon.
        bn_momentum: batch-norm momentum.

    Example:

    ```python
    aspp = deeplab_keras.layers.ASPP(filters=256, rates=(6, 12, 18))
    aspp(keras.random.normal((2, 33, 33, 2048))).shape  # (2, 33, 33, 256)
    ```
    """

    def __init__(self, filters=256, rates=(6, 12, 18), image_pooling=True, separable=False,
                 pooling_first=False, dropout=0.1, bn_epsilon=1e-5, bn_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.rates = int(filters), tuple(int(r) for r in rates)
        if min(self.rates, default=1) < 1:
            raise ValueError(f"ASPP rates must be >= 1; received {self.rates}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1); received {dropout}.")
        self.image_pooling, self.separable = bool(image_pooling), bool(separable)
        self.pooling_first, self.dropout = bool(pooling_first), float(dropout)
        self.bn_epsilon, self.bn_momentum = float(bn_epsilon), float(bn_momentum)
        bn = dict(bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum)
        self.conv_1x1 = ConvBN(self.filters, 1, name="aspp0", **bn)
        self.atrous_branches = [
            ConvBN(self.filters, 3, rate=r, separable=self.separable, name=f"aspp{i + 1}", **bn)
            for i, r in enumerate(self.rates)
        ]
        self.pooling_conv = (ConvBN(self.filters, 1, name="image_pooling", **bn)
                             if self.image_pooling else None)
        self.projection = ConvBN(self.filters, 1, name="projection", **bn)
        self.dropout_layer = keras.layers.Dropout(self.dropout) if self.dropout else None

    def _num_branches(self):
        return 1 + len(self.rates) + int(self.image_pooling)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if shape[-1] is None:
            raise ValueError(f"{self.name}: the channel dimension must be known.")
        self.conv_1x1.build(shape)
        for branch in self.atrous_branches:
            branch.build(shape)
        if self.pooling_conv is not None:
            self.pooling_conv.build((shape[0], 1, 1, shape[-1]))
        self.projection.build(shape[:-1] + (self.filters * self._num_branches(),))

    def call(self, x, training=None):
        branches = [self.conv_1x1(x, training=training)]
        branches += [b(x, training=training) for b in self.atrous_branches]
        if self.pooling_conv is not None:
            pooled = ops.mean(x, axis=(1, 2), keepdims=True)
            pooled = self.pooling_conv(pooled, training=training)
            pooled = pooled * ops.ones_like(branches[0][..., :1])
            branches = [pooled] + branches if self.pooling_first else branches + [pooled]
        y = ops.concatenate(branches, axis=-1) if len(branches) > 1 else branches[0]
        y = self.projection(y, training=training)
        if self.dropout_layer is not None:
            y = self.dropout_layer(y, training=training)
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters, "rates": self.rates, "image_pooling": self.image_pooling,
            "separable": self.separable, "pooling_first": self.pooling_first,
            "dropout": self.dropout, "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
        })
        return config
