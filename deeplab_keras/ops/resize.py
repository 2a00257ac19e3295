"""Bilinear resizing that works with dynamic shapes on every backend.

`keras.ops.image.resize` needs a static Python size, which a model that
accepts any image size does not have under `tf.function`. On TensorFlow we
call `tf.image.resize` (TensorFlow is the backend there, so it is installed);
elsewhere shapes are concrete at trace time and `keras.ops` suffices.

`align_corners=True` reproduces TF1's `tf.image.resize_bilinear(...,
align_corners=True)`, which TF research/deeplab checkpoints were trained with.

Both modes are written with gathers and lerps. On TensorFlow the half-pixel
mode uses them too: `tf.image.resize` compiled by XLA (`jit_compile=True`,
Keras' default on GPU) returns wrong values for many size pairs in TF 2.21
(e.g. 9 -> 65 differs by ~3 on values ~2), so it is avoided.
"""

import fractions

import keras
from keras import ops


def spatial_size(x):
    """Returns (height, width) of an NHWC tensor, static where known."""
    shape = ops.shape(x)
    return shape[1], shape[2]


SIZE_RULES = ("ceil", "caffe_interp")


def scaled_size(n, scale, rule="ceil"):
    """The length `n` resized by `scale`.

    - "ceil": `ceil(n * scale)`, at least 1: TF DeepLab's multi-scale evaluation and our
      default.
    - "caffe_interp": the DeepLab Caffe `Interp` layer with `scale = zoom / shrink` (0.75 is
      zoom 3, shrink 4): `(n - 1) // shrink * zoom + 1`. Equal to "ceil" for n = 8k + 1.

    `n` is a Python int (computed exactly, robust to float error such as 0.7 * 10) or a
    tensor (inside a graph).
    """
    if rule == "caffe_interp":
        fraction = fractions.Fraction(scale).limit_denominator(16)
        zoom, shrink = fraction.numerator, fraction.denominator
        return (n - 1) // shrink * zoom + 1
    if rule != "ceil":
        raise ValueError(f"scaled_size: `rule` must be one of {SIZE_RULES}; received {rule!r}.")
    if isinstance(n, int):
        return max(1, -(-int(n * scale * 1e6) // 1000000))
    return ops.maximum(ops.cast(ops.ceil(ops.cast(n, "float32") * scale), "int32"), 1)


def _is_static(size):
    return all(isinstance(s, int) for s in size)


def _lerp_axis(x, out_len, axis, align_corners):
    """Linear interpolation of `x` along `axis` to `out_len` samples."""
    in_len = ops.shape(x)[axis]
    in_f = ops.cast(in_len, "float32")
    out_f = ops.cast(out_len, "float32")
    positions = ops.cast(ops.arange(out_len), "float32")
    if align_corners:
        scale = ops.where(out_f > 1.0, (in_f - 1.0) / ops.maximum(out_f - 1.0, 1.0), 0.0)
        coords = positions * scale
    else:
        coords = ops.clip((positions + 0.5) * (in_f / out_f) - 0.5, 0.0, in_f - 1.0)
    lo = ops.floor(coords)
    frac = coords - lo
    lo_i = ops.cast(lo, "int32")
    hi_i = ops.minimum(lo_i + 1, ops.cast(in_len, "int32") - 1)
    lo_v = ops.take(x, lo_i, axis=axis)
    hi_v = ops.take(x, hi_i, axis=axis)
    bshape = [1, 1, 1, 1]
    bshape[axis] = -1
    frac = ops.cast(ops.reshape(frac, bshape), x.dtype)
    return lo_v + (hi_v - lo_v) * frac


def resize_bilinear(x, size, align_corners=False):
    """Bilinearly resizes an NHWC tensor to `size` = (height, width).

    Args:
        x: tensor of shape `[batch, height, width, channels]`.
        size: target `(height, width)`; ints or scalar tensors.
        align_corners: if True, corner pixels of input and output are
            aligned (TF1 semantics); otherwise half-pixel centres are used
            (TF2, PyTorch `align_corners=False`).

    Example:

    ```python
    y = resize_bilinear(keras.ops.ones((1, 33, 33, 21)), (513, 513))
    ```
    """
    size = tuple(size)
    if len(size) != 2:
        raise ValueError(f"`size` must be (height, width); received {size!r}.")
    if align_corners or keras.backend.backend() == "tensorflow":
        y = _lerp_axis(x, size[0], axis=1, align_corners=align_corners)
        return _lerp_axis(y, size[1], axis=2, align_corners=align_corners)
    if not _is_static(size):
        size = tuple(int(s) for s in size)
    return ops.image.resize(
        x, size, interpolation="bilinear", antialias=False, data_format="channels_last"
    )
