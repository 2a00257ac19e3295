"""VGG-16 in the DeepLab-LargeFOV form (output stride 8)."""

import keras

from deeplab_keras.backbones.base import Backbone
from deeplab_keras.backbones.output_stride import check_output_stride
from deeplab_keras.layers.atrous_conv import AtrousConv2D
from deeplab_keras.layers.pooling import CaffePooling2D

CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
POOLINGS = ("symmetric", "caffe")


@keras.saving.register_keras_serializable(package="deeplab_keras")
class VGG16LargeFOVBackbone(Backbone):
    """VGG-16 conv1..pool5 as modified by DeepLab (Chen et al., ICLR 2015).

    pool1-3 are 3x3 stride 2 (pad 1), pool4 and pool5 are 3x3 stride 1 (pad
    1) and conv5 uses atrous rate 2, so the output stride is 8. fc6/fc7 belong
    to the head (`deeplab_keras.layers.ASPPV2`). Layer names follow
    keras.applications' VGG16 (`block1_conv1`, ...).

    Args:
        output_stride: only 8 is defined for this network.
        widths: filters of the five conv blocks, default (64, 128, 256, 512, 512).
        pooling: "symmetric" (pad 1, sizes rounded down) or "caffe" (sizes rounded up, as the
            DeepLab Caffe releases compute them; the same for inputs of size 8k+1).
        pool5a: add DeepLab v1 LargeFOV's `pool5a` (3x3 average pooling, stride 1, pad 1,
            padding counted in the average as Caffe does) after pool5.

    Example:

    ```python
    backbone = deeplab_keras.backbones.vgg16_largefov()
    backbone(keras.random.uniform((1, 321, 321, 3)))["high_level"].shape  # (1, 41, 41, 512)
    ```
    """

    def __init__(self, output_stride=8, widths=(64, 128, 256, 512, 512), pooling="symmetric",
                 pool5a=False, **kwargs):
        output_stride = check_output_stride(output_stride, allowed=(8,),
                                            who="VGG16LargeFOVBackbone")
        widths = tuple(int(w) for w in widths)
        if len(widths) != 5 or min(widths) < 1:
            raise ValueError(f"`widths` needs 5 positive ints; received {widths}.")
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}; received {pooling!r}.")
        inputs = keras.Input((None, None, 3), name="images")
        x = inputs
        features, strides, stride = {}, {}, 1
        for b, (n_convs, width) in enumerate(zip(CONVS_PER_BLOCK, widths)):
            rate = 2 if b == 4 else 1
            for c in range(n_convs):
                x = AtrousConv2D(width, 3, rate=rate, name=f"block{b + 1}_conv{c + 1}")(x)
                x = keras.layers.Activation("relu", name=f"block{b + 1}_relu{c + 1}")(x)
            pool_stride = 2 if b < 3 else 1
            if pooling == "caffe":
                x = CaffePooling2D("max", 3, pool_stride, 1, name=f"block{b + 1}_pool")(x)
            else:
                x = keras.layers.ZeroPadding2D(1, data_format="channels_last",
                                               name=f"block{b + 1}_pad")(x)
                x = keras.layers.MaxPooling2D(3, strides=pool_stride,
                                              data_format="channels_last",
                                              name=f"block{b + 1}_pool")(x)
            stride *= pool_stride
            features[f"pool{b + 1}"], strides[f"pool{b + 1}"] = x, stride
        if pool5a:
            x = CaffePooling2D("avg", 3, 1, 1, name="pool5a")(x)
            features["pool5a"], strides["pool5a"] = x, stride
        features["low_level"], strides["low_level"] = features["pool2"], 4
        features["high_level"], strides["high_level"] = x, 8
        self._init_backbone(inputs, features, output_stride, strides,
                            dict(widths=widths, pooling=pooling, pool5a=bool(pool5a)), **kwargs)
        self.widths, self.pooling, self.pool5a = widths, pooling, bool(pool5a)


def vgg16_largefov(output_stride=8, **kwargs):
    """VGG-16 LargeFOV backbone (DeepLab v1/v2); output stride 8 only."""
    return VGG16LargeFOVBackbone(output_stride=output_stride, **kwargs)
