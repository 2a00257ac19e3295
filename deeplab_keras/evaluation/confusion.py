"""A pixel confusion matrix in numpy: mean IoU, per-class IoU, pixel accuracy, a table.

Used by `evaluate` (whole datasets) and by the streaming `train.MeanIoU` metric (its
`to_confusion_matrix`).
"""

import numpy as np

from deeplab_keras.labels import describe_invalid


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
    cm = deeplab_keras.evaluation.ConfusionMatrix(num_classes=21, ignore_label=255)
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


__all__ = ["ConfusionMatrix", "iou_from_confusion", "mean_of_present"]
