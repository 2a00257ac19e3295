"""Backend-neutral tensor helpers built on `keras.ops`."""

from deeplab_keras.ops.conv import atrous_conv2d
from deeplab_keras.ops.resize import resize_bilinear
from deeplab_keras.ops.resize import spatial_size

__all__ = ["atrous_conv2d", "resize_bilinear", "spatial_size"]
