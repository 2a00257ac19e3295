"""One image through a model, optionally multi-scale, flipped and by sliding window.

`predict_probabilities` fuses the passes in probability space (TF DeepLab's multi-scale
evaluation); `predict_logits` averages raw logits. Everything here is numpy plus `keras.ops`, so
it runs on TensorFlow and JAX.
"""

import math
import weakref

import keras
import numpy as np

from deeplab_keras.data.rgb import as_rgb_array
from deeplab_keras.ops.resize import resize_bilinear
from deeplab_keras.ops.resize import scaled_size


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


# model -> its traced inference function (TensorFlow); weak, so the cache keeps no model alive.
_TRACED = weakref.WeakKeyDictionary()


def _inference_function(model):
    """On TensorFlow, `model(x, training=False)` as one graph traced once for any batch and
    image size (an eager call runs layer by layer: ~4x slower for MobileNetV2 at 360x480);
    elsewhere the model itself."""
    def eager(x):
        return model(keras.ops.convert_to_tensor(x), training=False)

    if keras.backend.backend() != "tensorflow":
        return eager
    if model not in _TRACED:
        import tensorflow as tf

        owner = weakref.ref(model)
        traced = tf.function(lambda x: owner()(x, training=False), input_signature=[
            tf.TensorSpec((None, None, None, 3), tf.float32)])
        try:
            traced.get_concrete_function()
            _TRACED[model] = traced
        except (ValueError, TypeError):  # a model that needs static sizes runs eagerly
            _TRACED[model] = None
    traced = _TRACED[model]
    return eager if traced is None else (lambda x: traced(keras.ops.cast(x, "float32")))


def _call_model(model, batch):
    """Runs `model` in inference mode; returns float32 numpy logits [N, h, w, C]."""
    out = _inference_function(model)(batch)
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


def predict_probabilities(model, image, scales=(1.0,), flip=False, crop_size=None, stride=None,
                          batch_size=4):
    """Predicts one image, optionally multi-scale, flipped and by sliding window.

    For each scale the image is resized bilinearly to `ceil(H * scale) x
    ceil(W * scale)` (the `ResizeByScale` convention), predicted (and, with
    `flip`, predicted mirrored and mirrored back), and the logits are resized
    bilinearly back to `H x W`. The passes are averaged as softmax
    probabilities (TF DeepLab's multi-scale evaluation).

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
        image: one image `[H, W, 3]`: uint8, uint16 (scaled by 1/256) or float in 0..255
            (`deeplab_keras.data.rgb.as_rgb_array`; NaN, inf and other ranges are refused).
        scales: input scales (e.g. `(0.5, 0.75, 1.0, 1.25, 1.5, 1.75)`).
        flip: also predict the horizontally mirrored image.
        crop_size: None, an int or (height, width) for the sliding window.
        stride: tile step, int or (height, width); default 2/3 of the crop.
        batch_size: images or tiles per model call.

    Returns:
        float32 numpy `[H, W, C]`.

    Example:

    ```python
    probs = deeplab_keras.evaluation.predict_probabilities(
        model, image, scales=(0.75, 1.0, 1.25), flip=True, crop_size=513)
    labels = probs.argmax(-1)
    ```
    """
    return _predict(model, image, scales, flip, crop_size, stride, batch_size, True,
                    "predict_probabilities")


def predict_logits(model, image, scales=(1.0,), flip=False, crop_size=None, stride=None,
                   batch_size=4):
    """Like `predict_probabilities`, but the passes are averaged as raw logits.

    With one scale, no flip and no sliding window it returns the model's logits unchanged
    (resized to the image if the model returns them at the output stride).

    Example:

    ```python
    logits = deeplab_keras.evaluation.predict_logits(model, image, crop_size=513)
    ```
    """
    return _predict(model, image, scales, flip, crop_size, stride, batch_size, False,
                    "predict_logits")


def _predict(model, image, scales, flip, crop_size, stride, batch_size, probabilities, who):
    shape = np.shape(image)
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(f"{who}: expected one RGB image [H, W, 3]; received shape "
                         f"{shape}. For a batch, call it per image.")
    image = as_rgb_array(image, f"{who}: the image")
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
        raise ValueError(f"{who}: `scales` must be positive; received {scales}.")
    if int(batch_size) < 1:
        raise ValueError(f"{who}: batch_size must be >= 1; received {batch_size}.")
    crop_size = _pair(crop_size, "crop_size")
    if crop_size is not None:
        stride = _pair(stride, "stride") or tuple(max(1, math.ceil(c * 2 / 3))
                                                  for c in crop_size)
        if stride[0] > crop_size[0] or stride[1] > crop_size[1]:
            raise ValueError(f"{who}: stride {stride} is larger than crop_size "
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
            value = _softmax(logits) if probabilities else logits
            total = value if total is None else total + value
            passes += 1
    return (total / passes).astype(np.float32)


__all__ = ["predict_logits", "predict_probabilities", "tile_starts"]
