"""Label maps against logits: shape checks, ignore labels, invalid values, size alignment.

Shared by the loss (`train.losses`), the streaming metric (`train.metrics`) and the numpy
confusion matrix (`evaluation.confusion`). Written with `keras.ops`, so it runs on TensorFlow
and JAX.

Example:

```python
labels, non_integer = prepare_labels(masks, "my_metric")       # int32 [B, H, W]
labels, logits, _ = align(labels, logits, "upsample_logits", align_corners=False)
valid = valid_labels(labels, non_integer, num_classes=21, ignore_label=255)
```
"""

import keras
import numpy as np
from keras import ops

from deeplab_keras.ops.resize import resize_bilinear

LABEL_MODES = ("upsample_logits", "downsample_labels")


def check_label_mode(label_mode, who):
    if label_mode not in LABEL_MODES:
        raise ValueError(f"{who}: `label_mode` must be one of {LABEL_MODES}; "
                         f"received {label_mode!r}.")
    return label_mode


def prepare_labels(y_true, who):
    """Returns (int32 labels [B, H, W], bool non-integer mask or None).

    Accepts [B, H, W] or [B, H, W, 1] of any integer or float dtype; float
    labels that are not whole numbers are flagged, never truncated.
    """
    labels = ops.convert_to_tensor(y_true)
    if len(labels.shape) == 4 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if len(labels.shape) != 3:
        raise ValueError(f"{who}: labels must have shape [batch, height, width] or "
                         f"[batch, height, width, 1]; received shape {tuple(labels.shape)}.")
    dtype = keras.backend.standardize_dtype(labels.dtype)
    non_integer = None
    if "float" in dtype:
        labels = ops.cast(labels, "float32")
        rounded = ops.floor(labels)
        non_integer = ops.not_equal(labels, rounded)
        labels = ops.cast(rounded, "int32")
    elif dtype != "int32":
        labels = ops.cast(labels, "int32")
    return labels, non_integer


def check_logits(y_pred, num_classes, who):
    logits = ops.convert_to_tensor(y_pred)
    if len(logits.shape) != 4:
        raise ValueError(f"{who}: logits must have shape [batch, height, width, classes]; "
                         f"received shape {tuple(logits.shape)}.")
    channels = logits.shape[-1]
    if channels is None:
        raise ValueError(f"{who}: the class axis of the logits must have a static size.")
    if num_classes is not None and int(channels) != int(num_classes):
        raise ValueError(f"{who}: num_classes={num_classes} but the logits have {channels} "
                         "channels; build the model with the same `num_classes`.")
    return logits, int(channels)


def _same_static_size(a, b):
    sa, sb = tuple(a.shape[1:3]), tuple(b.shape[1:3])
    return None not in sa and sa == sb


def nearest_indices(out_len, in_len):
    """Source rows for nearest-neighbour resampling `in_len` -> `out_len`.

    `floor(i * in_len / out_len)`, computed in integers: the sampling of TF1's
    `resize_nearest_neighbor` (align_corners=False, no half-pixel centres) and
    PyTorch's `interpolate(mode="nearest")`, used by the DeepLab v2 ports to
    shrink labels to the output-stride map.
    """
    out_len = ops.cast(out_len, "int32")
    in_len = ops.cast(in_len, "int32")
    rows = ops.floor_divide(ops.arange(out_len, dtype="int32") * in_len, out_len)
    return ops.minimum(rows, in_len - 1)


def subsample_nearest(x, size):
    """Nearest-neighbour subsampling of a [B, H, W, ...] tensor to `size`."""
    shape = ops.shape(x)
    x = ops.take(x, nearest_indices(size[0], shape[1]), axis=1)
    return ops.take(x, nearest_indices(size[1], shape[2]), axis=2)


def align(labels, logits, label_mode, align_corners, extras=()):
    """Brings labels (and per-pixel `extras`) and logits to one spatial size."""
    if _same_static_size(labels, logits):
        return labels, logits, extras
    if label_mode == "upsample_logits":
        shape = ops.shape(labels)
        return labels, resize_bilinear(logits, (shape[1], shape[2]), align_corners), extras
    shape = ops.shape(logits)
    size = (shape[1], shape[2])
    labels = subsample_nearest(labels, size)
    extras = tuple(None if e is None else subsample_nearest(e, size) for e in extras)
    return labels, logits, extras


def _ignored(labels, ignore_label):
    if ignore_label is None:
        return ops.zeros_like(labels, dtype="bool")
    return ops.equal(labels, ignore_label)


def valid_labels(labels, non_integer, num_classes, ignore_label):
    """Pixels with a class id in [0, num_classes) that is not the ignore label."""
    valid = ops.logical_and(ops.logical_and(labels >= 0, labels < num_classes),
                            ops.logical_not(_ignored(labels, ignore_label)))
    if non_integer is not None:
        valid = ops.logical_and(valid, ops.logical_not(non_integer))
    return valid


def invalid_labels(labels, non_integer, num_classes, ignore_label):
    """Pixels that are neither a class id in [0, num_classes) nor the ignore label."""
    out_of_range = ops.logical_or(labels < 0, labels >= num_classes)
    invalid = ops.logical_and(out_of_range, ops.logical_not(_ignored(labels, ignore_label)))
    if non_integer is not None:
        invalid = ops.logical_or(invalid, non_integer)
    return invalid


def describe_invalid(values, invalid, limit=10):
    """(count, "v1, v2, ...") of the distinct values at the `invalid` pixels."""
    invalid = np.asarray(invalid).astype(bool)
    values = np.asarray(values).reshape(invalid.shape)
    distinct = np.unique(values[invalid])
    shown = ", ".join(f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)
                      for v in distinct[:limit])
    return int(invalid.sum()), shown + (" ..." if len(distinct) > limit else "")


def raise_invalid_labels(who, y_true, invalid, num_classes, ignore_label):
    count, values = describe_invalid(ops.convert_to_numpy(y_true), ops.convert_to_numpy(invalid))
    raise ValueError(
        f"{who}: {count} label pixel(s) have values [{values}] outside [0, {num_classes}) "
        f"that are not the ignore label ({ignore_label}). Fix the masks (map void/border "
        f"values to the ignore label), or set `ignore_label` / build the model with more "
        "classes.")


__all__ = ["LABEL_MODES", "align", "check_label_mode", "check_logits", "describe_invalid",
           "invalid_labels", "nearest_indices", "prepare_labels", "raise_invalid_labels",
           "subsample_nearest", "valid_labels"]
