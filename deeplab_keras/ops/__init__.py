"""Backend-neutral tensor helpers built on `keras.ops`."""

from deeplab_keras.ops.resize import resize_bilinear
from deeplab_keras.ops.resize import spatial_size

__all__ = ["resize_bilinear", "spatial_size"]
