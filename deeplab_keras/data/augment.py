"""DeepLab training augmentation in numpy + Pillow: random scale, pad, random crop, flip.

The recipe of DeepLab (v2 Sec. 4, v3 Sec. 4): scale the image by a random factor in
`scale_range` (image bilinear, mask NEAREST so no new label values appear), pad bottom/right up
to the crop size, take a random crop, flip left-right with probability 0.5.

Padding: the image is padded with the ImageNet mean pixel `MEAN_PIXEL = (124, 116, 104)`
(0..255 RGB), which becomes ~0 after the usual mean/std normalisation, so padding looks like
"no signal" to the network; the mask is padded with the ignore label, so padded pixels never
count in the loss or the metrics. Pass `pad_value=0` for black padding.

Resizing uses Pillow: `BILINEAR` for images (Pillow widens the filter when downscaling, i.e. it
antialiases) and `NEAREST` for masks.

Every random draw comes from the `numpy.random.Generator` you pass, in a fixed order (scale,
crop row, crop column, flip), so the same seed gives bit-identical output.

Example:

```python
rng = np.random.default_rng(0)
image, mask = augment(image, mask, rng, crop_size=(321, 321))
```
"""

import numpy as np
from PIL import Image

MEAN_PIXEL = (124, 116, 104)
IGNORE_LABEL = 255


def check_size(size, name="crop_size"):
    """Validates a `(height, width)` pair of positive ints and returns it as a tuple.

    Example:

    ```python
    check_size([321, 321])  # (321, 321)
    ```
    """
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (height, width); received {size!r}.") from None
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be positive (height, width); received {size!r}.")
    return h, w


def _check_pair(image, mask):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W, 3]; received {image.dtype} {image.shape}.")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim != 2 or mask.dtype != np.uint8:
            raise ValueError(f"mask must be uint8 [H, W]; received {mask.dtype} {mask.shape}.")
        if mask.shape != image.shape[:2]:
            raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size.")
    return image, mask


def resize_pair(image, mask, size):
    """Resizes image (bilinear) and mask (nearest) to `size = (height, width)`.

    Example:

    ```python
    small_image, small_mask = resize_pair(image, mask, (180, 240))
    ```
    """
    image, mask = _check_pair(image, mask)
    h, w = check_size(size, "size")
    if image.shape[:2] != (h, w):
        image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
        if mask is not None:
            mask = np.asarray(Image.fromarray(mask).resize((w, h), Image.NEAREST))
    return image, mask


def pad_to_size(image, mask, size, ignore_label=IGNORE_LABEL, pad_value=MEAN_PIXEL):
    """Pads bottom/right up to at least `size = (height, width)`; never crops.

    The image gets `pad_value` (one value or one per channel), the mask `ignore_label`.

    Example:

    ```python
    image, mask = pad_to_size(image, mask, (513, 513))  # DeepLab's fixed-size eval input
    ```
    """
    image, mask = _check_pair(image, mask)
    h, w = check_size(size, "size")
    pad_h, pad_w = max(h - image.shape[0], 0), max(w - image.shape[1], 0)
    if pad_h or pad_w:
        fill = np.broadcast_to(np.asarray(pad_value, np.uint8), (3,))
        padded = np.empty((image.shape[0] + pad_h, image.shape[1] + pad_w, 3), np.uint8)
        padded[:] = fill
        padded[:image.shape[0], :image.shape[1]] = image
        image = padded
        if mask is not None:
            mask = np.pad(mask, ((0, pad_h), (0, pad_w)), constant_values=ignore_label)
    return image, mask


def center_pad_or_crop(image, mask, size, ignore_label=IGNORE_LABEL, pad_value=MEAN_PIXEL):
    """Returns exactly `size = (height, width)`: pads bottom/right if smaller, then takes the
    centre crop if larger (the deterministic counterpart of `augment`, used with augment=False).

    Example:

    ```python
    image, mask = center_pad_or_crop(image, mask, (321, 321))
    ```
    """
    h, w = check_size(size, "size")
    image, mask = pad_to_size(image, mask, (h, w), ignore_label, pad_value)
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    image = image[top:top + h, left:left + w]
    if mask is not None:
        mask = mask[top:top + h, left:left + w]
    return np.ascontiguousarray(image), None if mask is None else np.ascontiguousarray(mask)


def resize_for_eval(image, mask=None, max_size=None, scale=None):
    """Resizes an eval image by `scale` or so its longer side is `max_size` (if larger).

    The mask is resized with NEAREST. Metrics are usually computed at the original size; use
    this for quick low-resolution evaluation or multi-scale inference inputs.

    Example:

    ```python
    image, mask = resize_for_eval(image, mask, max_size=512)
    ```
    """
    image, mask = _check_pair(image, mask)
    h, w = image.shape[:2]
    if scale is None and max_size is None:
        return image, mask
    factor = float(scale) if scale is not None else min(1.0, max_size / max(h, w))
    if factor <= 0:
        raise ValueError(f"scale must be positive; received {scale}.")
    return resize_pair(image, mask, (max(1, round(h * factor)), max(1, round(w * factor))))


def augment(image, mask, rng, crop_size, scale_range=(0.5, 2.0), flip=True,
            ignore_label=IGNORE_LABEL, pad_value=MEAN_PIXEL):
    """Random scale, pad, random crop and horizontal flip of an image and its mask.

    Args:
        image: uint8 `[H, W, 3]`.
        mask: uint8 `[H, W]` (or None for image-only augmentation).
        rng: a `numpy.random.Generator`; the only source of randomness.
        crop_size: `(height, width)` of the output.
        scale_range: `(low, high)` for a uniform random scale factor, or None for no scaling.
        flip: random left-right flip with probability 0.5.
        ignore_label: mask value for padded pixels.
        pad_value: image value for padded pixels (default the mean pixel, see module docs).

    Returns:
        `(image uint8 [h, w, 3], mask uint8 [h, w])` with `(h, w) = crop_size`.

    Example:

    ```python
    rng = np.random.default_rng(7)
    crop, crop_mask = augment(image, mask, rng, crop_size=(321, 321), ignore_label=255)
    ```
    """
    image, mask = _check_pair(image, mask)
    crop_h, crop_w = check_size(crop_size)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)); "
                        f"received {type(rng).__name__}.")
    if scale_range is not None:
        low, high = (float(v) for v in scale_range)
        if not 0 < low <= high:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high; received "
                             f"{scale_range!r}.")
        factor = rng.uniform(low, high)
        if factor != 1.0:
            h, w = image.shape[:2]
            image, mask = resize_pair(image, mask,
                                      (max(1, round(h * factor)), max(1, round(w * factor))))
    image, mask = pad_to_size(image, mask, (crop_h, crop_w), ignore_label, pad_value)
    top = int(rng.integers(0, image.shape[0] - crop_h + 1))
    left = int(rng.integers(0, image.shape[1] - crop_w + 1))
    image = image[top:top + crop_h, left:left + crop_w]
    if mask is not None:
        mask = mask[top:top + crop_h, left:left + crop_w]
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
        if mask is not None:
            mask = mask[:, ::-1]
    return np.ascontiguousarray(image), None if mask is None else np.ascontiguousarray(mask)
