"""Pooling with Caffe's size and padding rules, for weights trained in Caffe (DeepLab v1/v2)."""

import keras
from keras import ops

from deeplab_keras.ops.resize import spatial_size

POOLS = ("max", "avg")
ROUNDINGS = ("floor", "ceil")


def pooled_size(n, kernel_size, strides, padding, rounding):
    """Output length of a pooling window over `n` (int or tensor), as Caffe computes it.

    "ceil" is Caffe's `PoolingLayer`: `ceil((n + 2p - k) / s) + 1`, minus one when the last
    window would start inside the padding; "floor" is every other framework's rule.
    """
    span = n + 2 * padding - kernel_size
    if rounding == "floor":
        return span // strides + 1
    out = -((-span) // strides) + 1
    if isinstance(out, int):
        return out - 1 if (out - 1) * strides >= n + padding else out
    return out - ops.cast((out - 1) * strides >= n + padding, "int32")


@keras.saving.register_keras_serializable(package="deeplab_keras")
class CaffePooling2D(keras.layers.Layer):
    """2-D max or average pooling with Caffe's output size and padding rules.

    Caffe rounds pooled sizes up (`rounding="ceil"`), so a `kernel 3, stride 2, pad 1` pool
    of a 250-pixel map gives 126 outputs where other frameworks give 125. Max pooling never
    picks a padded cell; average pooling divides by the window's cells inside the padded
    extent (Caffe's `pool_size`), so zero padding counts but the ceil overhang does not.
    Identical to the usual floor-rounded pooling for sizes where the windows tile exactly
    (e.g. 513 through DeepLab's pools).

    Args:
        pool: "max" or "avg".
        kernel_size, strides, padding: ints (square windows, symmetric padding).
        rounding: "ceil" (Caffe) or "floor".

    Example:

    ```python
    pool = deeplab_keras.layers.CaffePooling2D("max", 3, 2, 1)
    pool(keras.ops.zeros((1, 250, 250, 64))).shape  # (1, 126, 126, 64)
    ```
    """

    def __init__(self, pool="max", kernel_size=3, strides=2, padding=1, rounding="ceil",
                 **kwargs):
        super().__init__(**kwargs)
        if pool not in POOLS:
            raise ValueError(f"CaffePooling2D: `pool` must be one of {POOLS}; received {pool!r}.")
        if rounding not in ROUNDINGS:
            raise ValueError(f"CaffePooling2D: `rounding` must be one of {ROUNDINGS}; received "
                             f"{rounding!r}.")
        if int(kernel_size) < 1 or int(strides) < 1 or not 0 <= int(padding) < int(kernel_size):
            raise ValueError(f"CaffePooling2D: need kernel_size >= 1, strides >= 1 and 0 <= "
                             f"padding < kernel_size; received {kernel_size}, {strides}, "
                             f"{padding}.")
        self.pool, self.rounding = pool, rounding
        self.kernel_size, self.strides, self.padding = int(kernel_size), int(strides), int(
            padding)

    def _size(self, n):
        return pooled_size(n, self.kernel_size, self.strides, self.padding, self.rounding)

    def call(self, x):
        k, s, p = self.kernel_size, self.strides, self.padding
        height, width = spatial_size(x)
        # Pad the ceil overhang too (at most s - 1 cells), pool "valid", crop to Caffe's size.
        pads = [[0, 0], [p, p + s - 1], [p, p + s - 1], [0, 0]]
        if self.pool == "max":
            y = ops.max_pool(ops.pad(x, pads, constant_values=float("-inf")), k, s, "valid")
        else:
            area = float(k * k)
            sums = ops.average_pool(ops.pad(x, pads), k, s, "valid") * area
            inside = ops.pad(ops.ones_like(x[..., :1]), [[0, 0], [p, p], [p, p], [0, 0]],
                             constant_values=1.0)
            inside = ops.pad(inside, [[0, 0], [0, s - 1], [0, s - 1], [0, 0]])
            counts = ops.average_pool(inside, k, s, "valid") * area
            y = sums / counts
        return y[:, : self._size(height), : self._size(width)]

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        return (input_shape[0], None if h is None else self._size(h),
                None if w is None else self._size(w), input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(pool=self.pool, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, rounding=self.rounding)
        return config


__all__ = ["CaffePooling2D", "pooled_size"]
