"""Mean IoU: a streaming Keras metric and a plain-numpy confusion matrix."""

import keras
import numpy as np
from keras import ops

from deeplab_keras.train.losses import align
from deeplab_keras.train.losses import check_label_mode
from deeplab_keras.train.losses import check_logits
from deeplab_keras.train.losses import describe_invalid
from deeplab_keras.train.losses import invalid_labels
from deeplab_keras.train.losses import is_eager
from deeplab_keras.train.losses import prepare_labels
from deeplab_keras.train.losses import raise_invalid_labels
from deeplab_keras.train.losses import valid_labels

# Counts are kept as high + low float32 parts: `high` holds multiples of 2**20
# (exact in float32 up to 2**44), `low` the remainder (< 2**20).
_SPLIT = 2 ** 20
MAX_EXACT_COUNT = 2 ** 44


def iou_from_confusion(matrix):
    """Per-class IoU (NaN where a class is in neither labels nor predictions)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    inter = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)


def mean_of_present(per_class):
    present = ~np.isnan(per_class)
    return float(per_class[present].mean()) if present.any() else 0.0


class ConfusionMatrix:
    """Pixel confusion matrix in numpy (int64): mIoU, per-class IoU, accuracy.

    Rows are true classes, columns predicted classes. Pixels labelled
    `ignore_label` are skipped; any other label outside `[0, num_classes)`,
    and any prediction outside it, raises `ValueError` naming the values.
    The mean IoU averages over classes that occur in the labels or the
    predictions (a class with zero union has no IoU and is excluded, as in
    TF DeepLab, mmsegmentation and torchmetrics with absent classes ignored).

    Args:
        num_classes: number of classes.
        ignore_label: label value to skip (None for none).
        class_names: optional names used by `table()` and `per_class_dict()`.

    Example:

    ```python
    cm = deeplab_keras.train.ConfusionMatrix(num_classes=21, ignore_label=255)
    for mask, prediction in pairs:
        cm.update(mask, prediction)
    print(cm.table(class_names))
    cm.miou
    ```
    """

    def __init__(self, num_classes, ignore_label=255, class_names=None):
        if int(num_classes) < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be >= 1; received {num_classes}.")
        self.num_classes = int(num_classes)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.class_names = _check_names(class_names, self.num_classes)
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)

    @classmethod
    def from_matrix(cls, matrix, ignore_label=255, class_names=None):
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"ConfusionMatrix.from_matrix: expected a square matrix; "
                             f"received shape {matrix.shape}.")
        cm = cls(matrix.shape[0], ignore_label, class_names)
        cm.matrix = np.rint(matrix).astype(np.int64)
        return cm

    def reset(self):
        self.matrix[...] = 0

    def update(self, labels, predictions):
        """Adds pixels; `labels` and `predictions` are int arrays of one shape."""
        labels = np.asarray(labels)
        predictions = np.asarray(predictions)
        if labels.shape != predictions.shape:
            raise ValueError(f"ConfusionMatrix.update: labels {labels.shape} and predictions "
                             f"{predictions.shape} differ in shape; resize the prediction to "
                             "the mask size first.")
        labels = _as_int(labels, "labels")
        predictions = _as_int(predictions, "predictions")
        keep = np.ones(labels.shape, bool) if self.ignore_label is None else (
            labels != self.ignore_label)
        bad = keep & ((labels < 0) | (labels >= self.num_classes))
        if bad.any():
            count, values = describe_invalid(labels, bad)
            raise ValueError(f"ConfusionMatrix: {count} label pixel(s) have values [{values}] "
                             f"outside [0, {self.num_classes}) that are not the ignore label "
                             f"({self.ignore_label}); fix the masks or the ignore_label.")
        bad = keep & ((predictions < 0) | (predictions >= self.num_classes))
        if bad.any():
            count, values = describe_invalid(predictions, bad)
            raise ValueError(f"ConfusionMatrix: {count} predicted pixel(s) have classes "
                             f"[{values}] outside [0, {self.num_classes}).")
        index = labels[keep] * self.num_classes + predictions[keep]
        self.matrix += np.bincount(index, minlength=self.num_classes ** 2).reshape(
            self.num_classes, self.num_classes)
        return self

    def merge(self, other):
        """Adds another ConfusionMatrix's counts (e.g. from another worker)."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"ConfusionMatrix.merge: {other.num_classes} vs "
                             f"{self.num_classes} classes.")
        self.matrix += other.matrix
        return self

    def per_class_iou(self):
        return iou_from_confusion(self.matrix)

    @property
    def miou(self):
        return mean_of_present(self.per_class_iou())

    def pixel_accuracy(self):
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else 0.0

    def per_class_dict(self, class_names=None):
        names = _check_names(class_names, self.num_classes) or self.class_names or [
            str(i) for i in range(self.num_classes)]
        return {name: float(v) for name, v in zip(names, self.per_class_iou())}

    def table(self, class_names=None):
        """A printable table: per-class IoU, label pixels, then the mean."""
        names = _check_names(class_names, self.num_classes) or self.class_names or [
            str(i) for i in range(self.num_classes)]
        width = max([len("class"), len("mean IoU")] + [len(n) for n in names])
        label_pixels = self.matrix.sum(1)
        lines = [f"{'class':<{width}}  {'IoU %':>7}  {'pixels':>12}"]
        for name, iou, count in zip(names, self.per_class_iou(), label_pixels):
            value = "    n/a" if np.isnan(iou) else f"{100 * iou:7.2f}"
            lines.append(f"{name:<{width}}  {value}  {count:>12d}")
        lines.append("-" * len(lines[0]))
        lines.append(f"{'mean IoU':<{width}}  {100 * self.miou:7.2f}  {self.matrix.sum():>12d}")
        lines.append(f"{'pixel acc':<{width}}  {100 * self.pixel_accuracy():7.2f}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"ConfusionMatrix(num_classes={self.num_classes}, miou={self.miou:.4f}, "
                f"pixels={int(self.matrix.sum())})")


def _as_int(x, what):
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        return x.astype(np.int64)
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)) or np.any(x != np.floor(x)):
            raise ValueError(f"ConfusionMatrix: {what} must hold whole class ids; received "
                             "non-integer floats (masks resized with bilinear interpolation?).")
        return x.astype(np.int64)
    raise TypeError(f"ConfusionMatrix: {what} must be an integer array; received {x.dtype}.")


def _check_names(names, num_classes):
    if names is None:
        return None
    names = [str(n) for n in names]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes.")
    return names


@keras.saving.register_keras_serializable(package="deeplab_keras")
class MeanIoU(keras.metrics.Metric):
    """Streaming mean intersection-over-union from a confusion matrix.

    Accumulates a `num_classes x num_classes` pixel confusion matrix (rows:
    true class, columns: predicted class). `result()` is the mean IoU over the
    classes present in the labels or the predictions (a class with zero union
    is excluded; with no counted pixel at all the result is 0).

    Counts are exact: each cell is stored as two float32 metric variables
    (multiples of 2**20, and the remainder), exact up to 2**44 ~ 1.7e13 pixels
    per cell (8 million 2-megapixel images), with no 64-bit types, so it runs
    on JAX without x64 and on GPUs. The variables are ordinary summed metric
    variables, so Keras aggregates them across tf.distribute replicas.

    Labels equal to `ignore_label` are skipped. Labels outside
    `[0, num_classes)` (and non-whole float labels) are never silently
    dropped: they are counted in the `invalid_labels` variable; an eager
    `update_state` raises `ValueError` right away, and `result()`,
    `per_class_iou()`, `pixel_accuracy()` and `confusion_matrix()` raise
    `ValueError` naming the count (inside a traced graph, where it cannot
    raise, `result()` is NaN). Under `model.fit`, the epoch-end logs read
    `result()` eagerly and so raise.

    `sample_weight`, if given, acts as a mask: pixels with weight 0 are not
    counted, all others count once.

    Args:
        num_classes: number of classes.
        ignore_label: label to skip (None for none).
        from_logits: True if `y_pred` holds per-class scores `[B, h, w, C]`
            (logits or probabilities; the argmax is taken); False if it holds
            class ids `[B, H, W]`.
        label_mode: how to match sizes when the scores are smaller than the
            labels: "upsample_logits" (bilinear, before the argmax) or
            "downsample_labels" (nearest, as `SegmentationCrossEntropy`).
        align_corners: TF1 resize semantics for "upsample_logits".
        name, dtype: as for any Keras metric.

    Example:

    ```python
    miou = deeplab_keras.train.MeanIoU(num_classes=21, ignore_label=255)
    model.compile(optimizer="sgd", loss=loss, metrics=[miou])
    model.evaluate(val_images, val_masks)
    miou.per_class_iou()  # numpy [21], NaN for absent classes
    ```
    """

    def __init__(self, num_classes, ignore_label=255, from_logits=True,
                 label_mode="upsample_logits", align_corners=False, name="mean_iou",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        if int(num_classes) < 1:
            raise ValueError(f"MeanIoU: num_classes must be >= 1; received {num_classes}.")
        self.num_classes = int(num_classes)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.from_logits = bool(from_logits)
        self.label_mode = check_label_mode(label_mode, "MeanIoU")
        self.align_corners = bool(align_corners)
        shape = (self.num_classes, self.num_classes)
        self.confusion_high = self.add_variable(shape, "zeros", dtype="float32",
                                                aggregation="sum", name="confusion_high")
        self.confusion_low = self.add_variable(shape, "zeros", dtype="float32",
                                               aggregation="sum", name="confusion_low")
        self.invalid_labels = self.add_variable((), "zeros", dtype="float32",
                                                aggregation="sum", name="invalid_labels")
        self.invalid_predictions = self.add_variable((), "zeros", dtype="float32",
                                                     aggregation="sum",
                                                     name="invalid_predictions")

    def _predictions(self, labels, y_pred, extras):
        if self.from_logits:
            scores, _ = check_logits(y_pred, self.num_classes, "MeanIoU")
            labels, scores, extras = align(labels, scores, self.label_mode,
                                           self.align_corners, extras)
            return labels, ops.cast(ops.argmax(scores, axis=-1), "int32"), extras
        predictions, pred_non_integer = prepare_labels(y_pred, "MeanIoU (predictions)")
        if pred_non_integer is not None:
            predictions = ops.where(pred_non_integer, -1, predictions)
        return labels, predictions, extras

    def update_state(self, y_true, y_pred, sample_weight=None):
        c = self.num_classes
        labels, non_integer = prepare_labels(y_true, "MeanIoU")
        image_weight = pixel_weight = None
        if sample_weight is not None:
            weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            if len(weight.shape) == 4 and weight.shape[-1] == 1:
                weight = ops.squeeze(weight, -1)
            if len(weight.shape) <= 1:
                image_weight = ops.not_equal(ops.reshape(weight, (-1, 1, 1)), 0.0)
            elif len(weight.shape) == 3:
                pixel_weight = ops.not_equal(weight, 0.0)
            else:
                raise ValueError("MeanIoU: sample_weight must be per image [B] or per pixel "
                                 f"[B, H, W]; received shape {tuple(weight.shape)}.")
        # Invalid labels are counted at full label resolution, before any subsampling.
        invalid = invalid_labels(labels, non_integer, c, self.ignore_label)
        for keep in (image_weight, pixel_weight):
            if keep is not None:
                invalid = ops.logical_and(invalid, keep)
        labels, predictions, (non_integer, pixel_weight) = self._predictions(
            labels, y_pred, (non_integer, pixel_weight))
        valid = valid_labels(labels, non_integer, c, self.ignore_label)
        for keep in (image_weight, pixel_weight):
            if keep is not None:
                valid = ops.logical_and(valid, keep)
        pred_ok = ops.logical_and(predictions >= 0, predictions < c)
        bad_pred = ops.logical_and(valid, ops.logical_not(pred_ok))
        counted = ops.logical_and(valid, pred_ok)
        index = ops.where(counted, labels * c + predictions, c * c)
        counts = ops.segment_sum(ops.ones((ops.size(index),), "int32"),
                                 ops.reshape(index, (-1,)), num_segments=c * c + 1)[: c * c]
        counts = ops.reshape(ops.cast(counts, "int32"), (c, c))
        num_invalid = ops.sum(ops.cast(invalid, "float32"))
        num_bad_pred = ops.sum(ops.cast(bad_pred, "float32"))
        if is_eager(num_invalid):
            if float(ops.convert_to_numpy(num_invalid)) > 0:
                raise_invalid_labels("MeanIoU", y_true, invalid, c, self.ignore_label)
            if float(ops.convert_to_numpy(num_bad_pred)) > 0:
                count, values = describe_invalid(ops.convert_to_numpy(predictions),
                                                 ops.convert_to_numpy(bad_pred))
                raise ValueError(f"MeanIoU: {count} predicted class id(s) [{values}] outside "
                                 f"[0, {c}).")
        high = ops.floor_divide(counts, _SPLIT) * _SPLIT
        low = ops.cast(counts - high, "float32") + self.confusion_low
        carry = ops.floor(low / _SPLIT) * _SPLIT
        self.confusion_low.assign(low - carry)
        self.confusion_high.assign(self.confusion_high + ops.cast(high, "float32") + carry)
        self.invalid_labels.assign(self.invalid_labels + num_invalid)
        self.invalid_predictions.assign(self.invalid_predictions + num_bad_pred)

    def result(self):
        matrix = ops.cast(self.confusion_high, "float32") + ops.cast(self.confusion_low,
                                                                      "float32")
        inter = ops.diagonal(matrix)
        union = ops.sum(matrix, axis=0) + ops.sum(matrix, axis=1) - inter
        present = union > 0
        iou = inter / ops.where(present, union, 1.0)
        num_present = ops.sum(ops.cast(present, "float32"))
        miou = ops.sum(ops.where(present, iou, 0.0)) / ops.maximum(num_present, 1.0)
        problems = self.invalid_labels + self.invalid_predictions
        if is_eager(ops.convert_to_tensor(problems)):
            self._raise_if_invalid()
            return miou
        return ops.where(problems > 0, float("nan"), miou)

    def _raise_if_invalid(self):
        labels = float(ops.convert_to_numpy(self.invalid_labels))
        predictions = float(ops.convert_to_numpy(self.invalid_predictions))
        if labels > 0:
            raise ValueError(
                f"MeanIoU: {labels:.0f} label pixel(s) outside [0, {self.num_classes}) that "
                f"are not the ignore label ({self.ignore_label}) were seen since the last "
                "reset; the IoU would be wrong. Fix the masks (map void values to the "
                "ignore label) or `num_classes`.")
        if predictions > 0:
            raise ValueError(f"MeanIoU: {predictions:.0f} predicted class id(s) outside "
                             f"[0, {self.num_classes}) were seen since the last reset.")

    def confusion_matrix(self):
        """The accumulated counts as an int64 numpy array [true, predicted]."""
        self._raise_if_invalid()
        high = ops.convert_to_numpy(self.confusion_high).astype(np.float64)
        low = ops.convert_to_numpy(self.confusion_low).astype(np.float64)
        return np.rint(high + low).astype(np.int64)

    def per_class_iou(self):
        """numpy float64 [num_classes]; NaN for classes with zero union."""
        return iou_from_confusion(self.confusion_matrix())

    def pixel_accuracy(self):
        matrix = self.confusion_matrix()
        total = matrix.sum()
        return float(np.trace(matrix) / total) if total else 0.0

    def to_confusion_matrix(self, class_names=None):
        """A numpy `ConfusionMatrix` with the accumulated counts (for `table()`)."""
        return ConfusionMatrix.from_matrix(self.confusion_matrix(), self.ignore_label,
                                           class_names)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, ignore_label=self.ignore_label,
                      from_logits=self.from_logits, label_mode=self.label_mode,
                      align_corners=self.align_corners)
        return config


__all__ = ["ConfusionMatrix", "MeanIoU"]
