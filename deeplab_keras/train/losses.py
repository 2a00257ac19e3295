"""Segmentation cross-entropy with an ignore label, and the MSC four-loss form.

Written with `keras.ops` only, so it runs on TensorFlow and JAX.
"""

import keras
import numpy as np
from keras import ops

from deeplab_keras.labels import align
from deeplab_keras.labels import check_label_mode
from deeplab_keras.labels import check_logits
from deeplab_keras.labels import invalid_labels
from deeplab_keras.labels import prepare_labels
from deeplab_keras.labels import raise_invalid_labels
from deeplab_keras.labels import valid_labels
from deeplab_keras.ops.concrete import is_concrete

# ---------------------------------------------------------------------------
# The loss.
# ---------------------------------------------------------------------------

def _scale_for_distribution(value):
    """Divides by the replica count under tf.distribute, as Keras' own losses do."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            value = value / float(replicas)
    return value


@keras.saving.register_keras_serializable(package="deeplab_keras")
class SegmentationCrossEntropy(keras.losses.Loss):
    """Softmax cross-entropy for segmentation with an ignore label.

    `y_true` holds class ids, shape `[B, H, W]` or `[B, H, W, 1]` (integer, or
    float holding whole numbers). `y_pred` holds logits `[B, h, w, C]`. When
    `(h, w) != (H, W)`:

    - `label_mode="upsample_logits"` (v3 style) bilinearly resizes the logits
      to the label size (half-pixel centres, or TF1 `align_corners`);
    - `label_mode="downsample_labels"` (v2 style) subsamples the labels to the
      logits' size by nearest neighbour with source index
      `floor(i * H / h)` (TF1 `resize_nearest_neighbor`, PyTorch
      `interpolate(mode="nearest")`, as in the DeepLab v2 TensorFlow and
      PyTorch ports). Per-pixel sample weights are subsampled the same way.

    The loss is `sum(w_i * CE_i) / sum(w_i)` over valid pixels, where `w_i` is
    the class weight of the pixel's label (1 without `class_weights`) times
    its sample weight (the PyTorch `CrossEntropyLoss(weight=...)` mean).
    Pixels labelled `ignore_label` contribute nothing; a batch with no valid
    pixel gives 0 (never NaN). The normalisation is per batch (per replica
    under tf.distribute, whose gradients Keras then averages).

    Labels outside `[0, C)` that are not `ignore_label` (and non-whole float
    labels) are errors, never silently ignored:

    - called eagerly, the loss raises `ValueError` naming the values;
    - inside a traced graph (`tf.function`, `jax.jit`, i.e. `model.fit`),
      where raising is impossible, the loss value of that batch is NaN, so
      `keras.callbacks.TerminateOnNaN` stops training and the logs show it.
      The gradient of that step is still finite: it excludes the bad pixels.
      `deeplab_keras.train.MeanIoU` additionally counts such pixels and
      raises when its result is read.

    Args:
        ignore_label: label value whose pixels are skipped (255 for VOC and
            Cityscapes; None for none).
        class_weights: optional list of `C` non-negative floats.
        label_mode: "upsample_logits" or "downsample_labels".
        num_classes: optional; if set, the logits must have this many channels.
        align_corners: TF1 resize semantics for "upsample_logits".
        name, dtype: as in `keras.losses.Loss`.
        reduction: only "sum_over_batch_size" (or "mean"): the weighted mean
            above. `loss.call(y_true, y_pred)` gives the per-pixel values.

    Example:

    ```python
    loss = deeplab_keras.train.SegmentationCrossEntropy(ignore_label=255)
    model.compile(optimizer="sgd", loss=loss)
    model.fit(images, masks)  # masks: int [B, H, W], 255 = void
    ```
    """

    def __init__(self, ignore_label=255, class_weights=None, label_mode="upsample_logits",
                 num_classes=None, align_corners=False, name="segmentation_cross_entropy",
                 reduction="sum_over_batch_size", dtype=None):
        who = type(self).__name__
        if reduction not in ("sum_over_batch_size", "mean"):
            raise ValueError(f"{who}: the loss is always the weighted mean over valid pixels; "
                             f"received reduction={reduction!r}. For per-pixel values call "
                             "`loss.call(y_true, y_pred)`.")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.label_mode = check_label_mode(label_mode, who)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.align_corners = bool(align_corners)
        if class_weights is not None:
            class_weights = [float(w) for w in np.asarray(class_weights).reshape(-1)]
            if any(not np.isfinite(w) or w < 0 for w in class_weights):
                raise ValueError(f"{who}: `class_weights` must be finite and >= 0; "
                                 f"received {class_weights}.")
            if self.num_classes is not None and len(class_weights) != self.num_classes:
                raise ValueError(f"{who}: {len(class_weights)} class_weights for "
                                 f"num_classes={self.num_classes}; give one per class.")
        self.class_weights = class_weights

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            total, weight, num_invalid, invalid = self._terms(y_true, y_pred, sample_weight)
            loss = ops.where(weight > 0, total / ops.where(weight > 0, weight, 1.0), 0.0)
            if is_concrete(num_invalid):
                if int(ops.convert_to_numpy(num_invalid)):
                    raise_invalid_labels(type(self).__name__, y_true, invalid,
                                         int(np.shape(y_pred)[-1]), self.ignore_label)
            else:
                loss = loss + ops.where(num_invalid > 0, float("nan"), 0.0)
            return _scale_for_distribution(ops.cast(loss, self.dtype))

    def call(self, y_true, y_pred):
        """Unreduced per-pixel loss (0 at ignored pixels), at the aligned size."""
        logits, num_classes = check_logits(y_pred, self.num_classes, type(self).__name__)
        labels, non_integer = prepare_labels(y_true, type(self).__name__)
        labels, logits, (non_integer,) = align(labels, logits, self.label_mode,
                                               self.align_corners, (non_integer,))
        nll, weights = self._pixel_terms(labels, non_integer, logits, num_classes, None)
        return nll * weights

    def _terms(self, y_true, y_pred, sample_weight):
        who = type(self).__name__
        logits, num_classes = check_logits(y_pred, self.num_classes, who)
        labels, non_integer = prepare_labels(y_true, who)
        # Checked at full label resolution, before any subsampling.
        invalid = invalid_labels(labels, non_integer, num_classes, self.ignore_label)
        pixel_weight = None
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            if len(sample_weight.shape) == 4 and sample_weight.shape[-1] == 1:
                sample_weight = ops.squeeze(sample_weight, axis=-1)
            if len(sample_weight.shape) == 3:
                pixel_weight = sample_weight
                sample_weight = None
            elif len(sample_weight.shape) > 1:
                raise ValueError(f"{who}: sample_weight must be per image [B] or per pixel "
                                 f"[B, H, W]; received shape {tuple(sample_weight.shape)}.")
        labels, logits, (non_integer, pixel_weight) = align(
            labels, logits, self.label_mode, self.align_corners, (non_integer, pixel_weight))
        nll, weights = self._pixel_terms(labels, non_integer, logits, num_classes, pixel_weight)
        if sample_weight is not None:
            weights = weights * ops.reshape(sample_weight, (-1, 1, 1))
        total = ops.sum(nll * weights)
        return total, ops.sum(weights), ops.sum(ops.cast(invalid, "int32")), invalid

    def _pixel_terms(self, labels, non_integer, logits, num_classes, pixel_weight):
        valid = valid_labels(labels, non_integer, num_classes, self.ignore_label)
        safe = ops.where(valid, labels, 0)
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        nll = -ops.squeeze(ops.take_along_axis(log_probs, ops.expand_dims(safe, -1), axis=-1),
                           axis=-1)
        weights = ops.cast(valid, "float32")
        if self.class_weights is not None:
            if len(self.class_weights) != num_classes:
                raise ValueError(f"{type(self).__name__}: {len(self.class_weights)} "
                                 f"class_weights for logits with {num_classes} classes.")
            weights = weights * ops.take(ops.convert_to_tensor(self.class_weights, "float32"),
                                         safe)
        if pixel_weight is not None:
            weights = weights * pixel_weight
        return nll, weights

    def get_config(self):
        config = super().get_config()
        config.update(ignore_label=self.ignore_label, class_weights=self.class_weights,
                      label_mode=self.label_mode, num_classes=self.num_classes,
                      align_corners=self.align_corners)
        return config


# ---------------------------------------------------------------------------
# MSC: the four losses of DeepLab v2.
# ---------------------------------------------------------------------------

def msc_output_keys(model_or_keys):
    """Output names of an `MSC(output_all_scales=True)` model (or the keys given)."""
    if isinstance(model_or_keys, (list, tuple)):
        return [str(k) for k in model_or_keys]
    model = model_or_keys
    if not hasattr(model, "scales") or not hasattr(model, "get_config"):
        raise TypeError("msc_losses/msc_targets: expected a deeplab_keras.models.MSC model or "
                        f"a list of output names; received {type(model).__name__}.")
    if not model.get_config().get("output_all_scales"):
        raise ValueError("The MSC model returns only the fused logits; build it with "
                         "`MSC(..., output_all_scales=True)` for the four-loss form, or use "
                         "one SegmentationCrossEntropy for the fused output.")
    from deeplab_keras.models.msc import scale_key

    return ["fused"] + [scale_key(s) for s in model.scales]


def msc_losses(model_or_keys, **loss_kwargs):
    """One `SegmentationCrossEntropy` per output of a multi-scale (MSC) model.

    DeepLab v2 trains MSC with four losses: one per input scale (1, 0.75,
    0.5) and one for the max-fused output. `MSC(output_all_scales=True)`
    returns a dict of logits; Keras sums the losses of a dict (scale them
    with `compile(loss_weights={name: factor})` if wanted) and logs each as
    `<name>_loss`. Feed the same labels to every output with `msc_targets`.

    Args:
        model_or_keys: the MSC model, or the list of its output names.
        **loss_kwargs: arguments of `SegmentationCrossEntropy` (ignore_label,
            class_weights, label_mode, ...).

    Returns:
        dict output name -> loss (pass as `compile(loss=...)`).

    Example:

    ```python
    msc = deeplab_keras.models.MSC(base, output_all_scales=True)
    msc.compile(optimizer="sgd", loss=deeplab_keras.train.msc_losses(msc, ignore_label=255))
    msc.fit(images, deeplab_keras.train.msc_targets(masks, msc))
    # tf.data: dataset.map(lambda x, y: (x, deeplab_keras.train.msc_targets(y, msc)))
    ```
    """
    keys = msc_output_keys(model_or_keys)
    return {key: SegmentationCrossEntropy(name=f"{key.replace('.', '_')}_ce", **loss_kwargs)
            for key in keys}


def msc_targets(labels, model_or_keys):
    """The same labels for every output of an MSC model: `{name: labels}`."""
    return {key: labels for key in msc_output_keys(model_or_keys)}


__all__ = ["SegmentationCrossEntropy", "msc_losses", "msc_targets"]
