"""Mean IoU as a streaming Keras metric (the numpy `ConfusionMatrix` is in
`deeplab_keras.evaluation.confusion`)."""

import keras
import numpy as np
from keras import ops

from deeplab_keras.evaluation.confusion import ConfusionMatrix
from deeplab_keras.evaluation.confusion import iou_from_confusion
from deeplab_keras.labels import align
from deeplab_keras.labels import check_label_mode
from deeplab_keras.labels import check_logits
from deeplab_keras.labels import describe_invalid
from deeplab_keras.labels import invalid_labels
from deeplab_keras.labels import prepare_labels
from deeplab_keras.labels import raise_invalid_labels
from deeplab_keras.labels import valid_labels
from deeplab_keras.ops.concrete import is_concrete

# Counts are kept as high + low float32 parts: `high` holds multiples of 2**20
# (exact in float32 up to 2**44), `low` the remainder (< 2**20).
_SPLIT = 2 ** 20
MAX_EXACT_COUNT = 2 ** 44


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
        if is_concrete(num_invalid):
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
        if is_concrete(ops.convert_to_tensor(problems)):
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


__all__ = ["MeanIoU"]
