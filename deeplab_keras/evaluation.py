"""Evaluation: multi-scale / flipped / sliding-window prediction and mIoU over a dataset.

Everything here is numpy plus `keras.ops`, so it runs on TensorFlow and JAX.
"""

import math

import keras
import numpy as np

from deeplab_keras.ops.resize import resize_bilinear
from deeplab_keras.train.metrics import ConfusionMatrix

OUTPUTS = ("probabilities", "logits")


def _resize(array, size):
    """Bilinear resize of an [H, W, C] numpy array (half-pixel centres)."""
    if tuple(array.shape[:2]) == tuple(size):
        return array
    out = resize_bilinear(keras.ops.convert_to_tensor(array[None].astype(np.float32)),
                          (int(size[0]), int(size[1])))
    return np.asarray(keras.ops.convert_to_numpy(out))[0]


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _call_model(model, batch):
    """Runs `model` in inference mode; returns float32 numpy logits [N, h, w, C]."""
    out = model(keras.ops.convert_to_tensor(batch), training=False)
    if isinstance(out, dict):
        if "fused" not in out:
            raise ValueError(f"The model returns a dict with keys {sorted(out)}; evaluation "
                             "needs one logits tensor (or a 'fused' entry).")
        out = out["fused"]
    elif isinstance(out, (list, tuple)):
        out = out[0]
    out = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)
    if out.ndim != 4 or out.shape[0] != batch.shape[0]:
        raise ValueError(f"The model returned shape {out.shape} for a batch of shape "
                         f"{batch.shape}; expected logits [batch, height, width, classes].")
    return out


def _pair(value, what):
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"`{what}` must be a positive int or (height, width); received "
                         f"{value!r}.")
    return value


def scaled_size(n, scale):
    """`ceil(n * scale)`, as `deeplab_keras.layers.ResizeByScale` computes it."""
    return max(1, -(-int(n * scale * 1e6) // 1000000))


def tile_starts(size, crop, stride):
    """Tile origins along one axis: every `stride`, the last tile flush with the end."""
    if size <= crop:
        return [0]
    count = math.ceil((size - crop) / stride) + 1
    return sorted({min(i * stride, size - crop) for i in range(count)})


def _predict_views(model, views, crop_size, stride, batch_size):
    """Logits [h, w, C] for each same-size view, full image or sliding window."""
    h, w = views[0].shape[:2]
    if crop_size is None or (h <= crop_size[0] and w <= crop_size[1]):
        outputs = []
        for start in range(0, len(views), batch_size):
            logits = _call_model(model, np.stack(views[start:start + batch_size]))
            outputs.extend(_resize(x, (h, w)) for x in logits)
        return outputs
    ch, cw = min(crop_size[0], h), min(crop_size[1], w)
    sh, sw = stride
    tiles = [(v, y, x) for v in range(len(views)) for y in tile_starts(h, ch, sh)
             for x in tile_starts(w, cw, sw)]
    sums = [None] * len(views)
    counts = np.zeros((h, w, 1), np.float32)
    for start in range(0, len(tiles), batch_size):
        chunk = tiles[start:start + batch_size]
        batch = np.stack([views[v][y:y + ch, x:x + cw] for v, y, x in chunk])
        for (v, y, x), logits in zip(chunk, _call_model(model, batch)):
            logits = _resize(logits, (ch, cw))
            if sums[v] is None:
                sums[v] = np.zeros((h, w, logits.shape[-1]), np.float32)
            sums[v][y:y + ch, x:x + cw] += logits
            if v == 0:
                counts[y:y + ch, x:x + cw] += 1.0
    return [s / counts for s in sums]


def predict_logits(model, image, scales=(1.0,), flip=False, crop_size=None, stride=None,
                   batch_size=4, output="probabilities"):
    """Predicts one image, optionally multi-scale, flipped and by sliding window.

    For each scale the image is resized bilinearly to `ceil(H * scale) x
    ceil(W * scale)` (the `ResizeByScale` convention), predicted (and, with
    `flip`, predicted mirrored and mirrored back), and the logits are resized
    bilinearly back to `H x W`. The passes are averaged as softmax
    probabilities (TF DeepLab's multi-scale evaluation) with
    `output="probabilities"`, or as raw logits with `output="logits"`. With
    one scale and no flip, "logits" returns the model's logits unchanged.

    With `crop_size`, an input (after scaling) larger than the crop is
    predicted tile by tile: tiles of `crop_size` every `stride` pixels, the
    last tile of a row or column shifted to end at the border, so every tile
    lies inside the image and no padding is needed; overlapping logits are
    averaged. A dimension not larger than the crop is not tiled. This bounds
    memory for large images (the models accept any size).

    Args:
        model: a segmentation model: RGB float32 0..255 images of any size in,
            logits `[B, h, w, C]` out (any `h, w`; resized to the input). A
            dict output uses its "fused" entry.
        image: one image `[H, W, 3]`, uint8 or float in 0..255.
        scales: input scales (e.g. `(0.5, 0.75, 1.0, 1.25, 1.5, 1.75)`).
        flip: also predict the horizontally mirrored image.
        crop_size: None, an int or (height, width) for the sliding window.
        stride: tile step, int or (height, width); default 2/3 of the crop.
        batch_size: images or tiles per model call.
        output: "probabilities" or "logits".

    Returns:
        float32 numpy `[H, W, C]`.

    Example:

    ```python
    probs = deeplab_keras.evaluation.predict_logits(
        model, image, scales=(0.75, 1.0, 1.25), flip=True, crop_size=513)
    labels = probs.argmax(-1)
    ```
    """
    if output not in OUTPUTS:
        raise ValueError(f"predict_logits: `output` must be one of {OUTPUTS}; received "
                         f"{output!r}.")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"predict_logits: expected one RGB image [H, W, 3]; received shape "
                         f"{image.shape}. For a batch, call it per image.")
    image = image.astype(np.float32)
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
        raise ValueError(f"predict_logits: `scales` must be positive; received {scales}.")
    if int(batch_size) < 1:
        raise ValueError(f"predict_logits: batch_size must be >= 1; received {batch_size}.")
    crop_size = _pair(crop_size, "crop_size")
    if crop_size is not None:
        stride = _pair(stride, "stride") or tuple(max(1, math.ceil(c * 2 / 3))
                                                  for c in crop_size)
        if stride[0] > crop_size[0] or stride[1] > crop_size[1]:
            raise ValueError(f"predict_logits: stride {stride} is larger than crop_size "
                             f"{crop_size}; tiles would leave gaps.")
    height, width = image.shape[:2]
    total, passes = None, 0
    for scale in scales:
        size = (scaled_size(height, scale), scaled_size(width, scale))
        scaled = _resize(image, size)
        views = [scaled] + ([np.ascontiguousarray(scaled[:, ::-1])] if flip else [])
        results = _predict_views(model, views, crop_size, stride, int(batch_size))
        for k, logits in enumerate(results):
            if k == 1:
                logits = logits[:, ::-1]
            logits = _resize(logits, (height, width))
            value = _softmax(logits) if output == "probabilities" else logits
            total = value if total is None else total + value
            passes += 1
    return (total / passes).astype(np.float32)


def _progress_target(examples, num_examples):
    if num_examples is not None:
        return int(num_examples)
    try:
        return len(examples)
    except TypeError:
        return None


def evaluate(model, examples, num_classes, ignore_label=255, scales=(1.0,), flip=False,
             crop_size=None, stride=None, batch_size=4, class_names=None, progress=True,
             num_examples=None):
    """Mean IoU of `model` over (name, image, mask) examples; no image is skipped.

    Each image is predicted with `predict_logits` (so multi-scale, flip and
    sliding window apply), its argmax compared with the mask pixel by pixel
    in a `ConfusionMatrix` (pixels equal to `ignore_label` skipped; other
    out-of-range mask values raise). A failing example raises `RuntimeError`
    naming it, chained to the cause.

    Args:
        model: a segmentation model (see `predict_logits`).
        examples: an iterable of `(name, image, mask)`: image uint8/float
            `[H, W, 3]` RGB 0..255, mask int `[H, W]` (or `[H, W, 1]`), e.g.
            `deeplab_keras.data.iterate_eval(...)`.
        num_classes: number of classes.
        ignore_label: mask value to skip (None for none).
        scales, flip, crop_size, stride, batch_size: see `predict_logits`.
        class_names: optional names for `per_class_iou` and the table.
        progress: show a `keras.utils.Progbar` with the running mIoU.
        num_examples: expected count (for the progress bar when `examples`
            has no `len`); if given and a different number arrives, raises.

    Returns:
        dict with `miou`, `per_class_iou` (name -> IoU, NaN for a class in
        neither masks nor predictions), `pixel_accuracy`, `num_images`,
        `confusion` (int64 `[C, C]`, rows true, columns predicted) and
        `table` (printable per-class IoU).

    Example:

    ```python
    result = deeplab_keras.evaluation.evaluate(
        model, deeplab_keras.data.iterate_eval(examples, layout), num_classes=11,
        ignore_label=layout.ignore_label, class_names=layout.class_names)
    print(result["table"])
    ```
    """
    cm = ConfusionMatrix(num_classes, ignore_label, class_names)
    target = _progress_target(examples, num_examples)
    bar = keras.utils.Progbar(target, unit_name="image", stateful_metrics=["mIoU"]) if (
        progress) else None
    count = 0
    for item in examples:
        try:
            name, image, mask = item
        except (TypeError, ValueError) as error:
            raise ValueError(f"evaluate: example #{count} is not a (name, image, mask) "
                             f"triple.") from error
        try:
            mask = np.asarray(mask)
            if mask.ndim == 3 and mask.shape[-1] == 1:
                mask = mask[..., 0]
            image = np.asarray(image)
            if mask.shape != image.shape[:2]:
                raise ValueError(f"mask shape {mask.shape} does not match image shape "
                                 f"{image.shape}.")
            probs = predict_logits(model, image, scales=scales, flip=flip, crop_size=crop_size,
                                   stride=stride, batch_size=batch_size)
            if probs.shape[-1] != cm.num_classes:
                raise ValueError(f"the model predicts {probs.shape[-1]} classes but "
                                 f"num_classes={cm.num_classes}.")
            cm.update(mask, probs.argmax(-1))
        except Exception as error:
            raise RuntimeError(f"evaluate: example #{count} ({name!r}) failed: "
                               f"{type(error).__name__}: {error}") from error
        count += 1
        if bar is not None:
            bar.update(count, values=[("mIoU", cm.miou)])
    if count == 0:
        raise ValueError("evaluate: `examples` yielded no images; check the split and the "
                         "data directory.")
    if num_examples is not None and count != int(num_examples):
        raise ValueError(f"evaluate: expected {num_examples} examples but received {count}.")
    return dict(miou=cm.miou, per_class_iou=cm.per_class_dict(), pixel_accuracy=cm.pixel_accuracy(),
                num_images=count, confusion=cm.matrix.copy(), table=cm.table())


__all__ = ["evaluate", "predict_logits", "tile_starts"]
