"""One image, whatever form a user has it in (a path, a PIL image, an array of uint8, uint16
or float), as the float32 RGB 0..255 array the models take, by one fixed rule.

Example:

```python
from deeplab_keras.data.rgb import as_rgb_array
as_rgb_array(np.zeros((4, 4, 3), np.uint16)).max()   # 0.0
```
"""

import os

import numpy as np

from deeplab_keras.data import decode


def is_pil_image(item):
    """Whether `item` is a PIL image (without importing PIL)."""
    return type(item).__module__.startswith("PIL.") and hasattr(item, "getexif")


def as_rgb_array(item, name="image"):
    """One image as float32 RGB `[H, W, 3]` in 0..255, by a fixed rule:

    - a path or a PIL image: decoded as `deeplab_keras.data.load_image` does (EXIF rotation,
      16-bit files scaled by 1/256, palette and CMYK converted);
    - uint8 arrays as they are; uint16 arrays are 16-bit images, scaled by 1/256;
    - other integer arrays and float arrays must hold values in 0..255 (floats in 0..1 are
      refused: multiply by 255); NaN and inf are refused;
    - `[H, W]` gray is repeated to 3 channels; a 4th (alpha) channel is dropped.

    Raises ValueError naming `name`, the value found and the fix.
    """
    if isinstance(item, (str, os.PathLike)):
        return decode.load_image(item).astype(np.float32)
    if is_pil_image(item):
        return decode.image_from_pil(item, name).astype(np.float32)
    array = np.asarray(item)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"{name} must be [H, W, 3] RGB (or [H, W] gray); received shape "
                         f"{array.shape}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}).")
    array = array[..., :3]
    kind = array.dtype.kind
    if kind == "u" and array.dtype.itemsize == 2:
        return (array.astype(np.float32) / 256.0).astype(np.float32)
    if kind not in "uif":
        raise ValueError(f"{name} has dtype {array.dtype}; give uint8 (0..255), uint16 "
                         "(16-bit, scaled by 1/256) or float (0..255) values.")
    if kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"{name} contains {bad} NaN or inf values; images must be finite RGB "
                         "in 0..255.")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 255:
        raise ValueError(f"{name} holds values {low:g}..{high:g} ({array.dtype}) outside "
                         "0..255; images are RGB in 0..255 (uint16 arrays are read as 16-bit). "
                         "Rescale it first.")
    if kind == "f" and high <= 1.0 and high > 0 and array.size > 16:
        raise ValueError(f"{name} looks scaled to 0..1 (max {high:.3f}); models take RGB in "
                         "0..255. Multiply by 255 first.")
    return array.astype(np.float32)


__all__ = ["as_rgb_array", "is_pil_image"]
