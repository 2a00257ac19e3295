"""Backend-neutral tensor helpers built on `keras.ops`."""

from deeplab_keras.ops.concrete import is_concrete
from deeplab_keras.ops.conv import atrous_conv2d
from deeplab_keras.ops.resize import resize_bilinear
from deeplab_keras.ops.resize import scaled_size
from deeplab_keras.ops.resize import spatial_size

__all__ = ["atrous_conv2d", "is_concrete", "resize_bilinear", "scaled_size", "spatial_size"]
