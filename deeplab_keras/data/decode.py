"""Reading images and masks with Pillow, with clear errors for bad files.

Images (`load_image`) come back as RGB uint8 `[H, W, 3]`:

* EXIF orientation is applied (`PIL.ImageOps.exif_transpose`), so the array is the picture as a
  viewer shows it. Masks are never EXIF-rotated: a mask must be drawn on the displayed
  (rotated) image, and `load_example` reports a size mismatch naming both files otherwise.
* Grayscale (L, 1) is replicated to 3 channels; RGBA / LA lose their alpha channel (the colour
  values are kept as stored, not blended on a background); palette (P) images are expanded to
  their colours; CMYK / YCbCr are converted by Pillow.
* 16-bit images (I;16*, I with values in 0..65535) are scaled to 8 bits by `>> 8`.
* Only JPEG, PNG, BMP, TIFF, WebP, GIF and PPM are opened (Pillow's other decoders are not
  reachable from a dataset file); images over `MAX_PIXELS` are refused before decoding, and
  multi-frame files (animated GIF/PNG/WebP, multi-page TIFF) are refused.

Masks (`load_mask`) come back as uint8 `[H, W]` class ids or the layout's ignore label:

* Palette (P) PNGs keep their **indices** (the VOC convention), not their colours.
* Single-channel 8-bit and 16-bit masks keep their values (16-bit values must be < 256).
* RGB/RGBA colour masks are mapped with the layout's `colour_map` (alpha dropped); without one,
  an RGB mask whose three channels are equal is read as grayscale, anything else is an error.
* The raw values then go through the layout's label table; values the table marks invalid
  raise a ValueError naming the file, the values and their pixel counts.

Every problem (zero-byte, truncated, corrupt, unknown format, unknown colour, bad label,
size mismatch) raises a ValueError whose message starts with the file path.

Example:

```python
from deeplab_keras import data
layout = data.get_layout("camvid")
image = data.load_image("/data/camvid/train/0001TP_006690.png")    # [360, 480, 3] uint8
mask = data.load_mask("/data/camvid/trainannot/0001TP_006690.png", layout)  # [360, 480]
image, mask = data.load_example(data.list_examples(layout, "/data/camvid", "val")[0], layout)
```
"""

import io
import os
import struct

import numpy as np
from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

from deeplab_keras.data.layouts import get_layout

MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold
FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF", "PPM")
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)


def _decode(source, path, kind, handler, load=True):
    """Opens `source` (a path or bytes) with Pillow, checks it, and returns `handler(img)`
    (with the pixels decoded first unless `load=False`: a header-only look)."""
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ValueError(f"{path}: the {kind} data is empty (0 bytes).")
        source = io.BytesIO(source)
    else:
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{path}: {kind} file not found.")
        if os.path.getsize(source) == 0:
            raise ValueError(f"{path}: the {kind} file is empty (0 bytes); re-download or "
                             "re-export it, or remove it from the split.")
    try:
        # (No warnings.catch_warnings here: it is not thread-safe, and loaders run in threads.
        # Pillow warns above MAX_PIXELS and raises above twice that; we refuse above it.)
        with Image.open(source, formats=FORMATS) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise _Refused(f"{width}x{height} pixels exceed the limit of {MAX_PIXELS}; "
                               "resize the file")
            if width == 0 or height == 0:
                raise _Refused(f"it has a zero size ({width}x{height})")
            if getattr(img, "n_frames", 1) > 1 and img.format != "MPO":
                raise _Refused(f"it has {img.n_frames} frames (animated or multi-page "
                               f"{img.format}); save the single frame you mean as PNG")
            if load:
                img.load()
            return handler(img)
    except _Refused as e:
        raise ValueError(f"{path}: {kind} file refused: {e}.") from None
    except UnidentifiedImageError:
        raise ValueError(f"{path}: Pillow cannot identify this {kind} file (accepted formats: "
                         f"{', '.join(FORMATS)}); the file is corrupt or of another "
                         "type.") from None
    except _Label:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"{path}: {kind} file refused: too many pixels ({e}); resize "
                         "it.") from None
    except _DECODE_ERRORS as e:
        raise ValueError(f"{path}: cannot decode the {kind} file ({type(e).__name__}: {e}). It "
                         "is corrupt or truncated; re-download or re-export it, or remove it "
                         "from the split.") from e


class _Refused(Exception):
    pass


class _Label(ValueError):
    """A ValueError about the content of a decoded mask (passes through `_decode`)."""


def _exif_orientation(img):
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # unreadable EXIF block: treat as no orientation
        return 1


def _image_to_rgb(img, path):
    mode = img.mode
    if mode == "RGB":
        return np.array(img, np.uint8)
    if mode in _SIXTEEN_BIT or mode == "I":
        values = np.asarray(img)
        if mode == "I" and (values.min() < 0 or values.max() > 65535):
            raise _Label(f"{path}: 32-bit integer image with values {values.min()}..{values.max()}"
                         " outside 0..65535; save it as an 8-bit RGB image.")
        gray = (values.astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        raise _Label(f"{path}: floating-point image (mode F) cannot be converted to RGB uint8 "
                     "unambiguously; save it as an 8-bit RGB image.")
    if mode in ("LA", "La", "L", "1"):
        gray = np.array(img.convert("L"), np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return np.array(img.convert("RGB"), np.uint8)


def _load_image(source, path):
    def handler(img):
        orientation = _exif_orientation(img)
        if orientation in range(2, 9):
            img = ImageOps.exif_transpose(img)
        return _image_to_rgb(img, path), orientation

    return _decode(source, path, "image", handler)


def load_image(path):
    """Reads an image file as RGB uint8 `[H, W, 3]` (EXIF orientation applied).

    See the module docstring for the conversions (gray, RGBA, palette, 16-bit).

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty, corrupt, truncated, unsupported or too large; the message names the
            file.

    Example:

    ```python
    image = load_image("photo.jpg")  # image.shape == (H, W, 3), image.dtype == uint8
    ```
    """
    path = os.fspath(path)
    return _load_image(path, path)[0]


def image_from_pil(img, name="PIL image"):
    """A PIL image as RGB uint8 `[H, W, 3]` with the conversions of `load_image` (EXIF
    orientation, 16-bit scaling, palette, CMYK); ValueError naming `name` otherwise.

    Example:

    ```python
    image = image_from_pil(PIL.Image.open("scan.tif"))
    ```
    """
    try:
        orientation = _exif_orientation(img)
        if orientation in range(2, 9):
            img = ImageOps.exif_transpose(img)
        return _image_to_rgb(img, name)
    except _Label:
        raise
    except _DECODE_ERRORS as e:
        raise ValueError(f"{name}: cannot convert the {img.mode} image to RGB "
                         f"({type(e).__name__}: {e}).") from e


def image_size(path):
    """`((height, width), EXIF orientation)` of an image file as `load_image` returns it, from
    its header only (no pixels decoded)."""
    path = os.fspath(path)

    def handler(img):
        orientation = _exif_orientation(img)
        width, height = img.size
        if orientation in range(5, 9):  # rotated by 90 degrees when loaded
            width, height = height, width
        return (height, width), orientation

    return _decode(path, path, "image", handler, load=False)


def _raw_mask(img, path, layout):
    """Returns (values uint8 [H, W], already_mapped)."""
    mode = img.mode
    if mode in ("L", "P"):
        return np.array(img, np.uint8), False
    if mode == "1":
        return np.array(img, np.uint8), False
    if mode in ("LA", "La", "PA"):
        return np.array(img, np.uint8)[..., 0], False
    if mode in _SIXTEEN_BIT or mode == "I":
        values = np.asarray(img)
        if values.min() < 0 or values.max() > 255:
            big = np.unique(values[(values < 0) | (values > 255)])
            raise _Label(f"{path}: 16/32-bit mask holds values {_short(big)} outside 0..255 "
                         f"({int(((values < 0) | (values > 255)).sum())} pixels); masks must "
                         "hold class ids < 256. Re-export it as an 8-bit PNG.")
        return values.astype(np.uint8), False
    if mode in ("RGB", "RGBA", "RGBX"):
        rgb = np.array(img.convert("RGB"), np.uint8)
        if layout.colour_map:
            return _map_colours(rgb, path, layout), True
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0].copy(), False
        raise _Label(f"{path}: the mask is a colour ({mode}) image but layout '{layout.name}' has"
                     " no colour_map. Pass colour_map={(r, g, b): class_id, ...} to folder_layout,"
                     " or save masks as single-channel or palette PNGs holding class ids.")
    raise _Label(f"{path}: unsupported mask mode {mode}; save masks as single-channel (L) or "
                 "palette (P) PNGs holding class ids.")


def _short(values, limit=10):
    values = [int(v) for v in values]
    text = ", ".join(str(v) for v in values[:limit])
    return f"[{text}{', ...' if len(values) > limit else ''}]"


def _map_colours(rgb, path, layout):
    codes = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[
        ..., 2]
    unique, inverse, counts = np.unique(codes.ravel(), return_inverse=True, return_counts=True)
    lookup = {(r << 16) | (g << 8) | b: label for (r, g, b), label in layout.colour_map.items()}
    labels = np.array([lookup.get(int(c), -1) for c in unique], np.int16)
    unknown = labels < 0
    if unknown.any():
        listed = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255}): {n} px"
                           for c, n in zip(unique[unknown][:10].tolist(),
                                           counts[unknown][:10].tolist()))
        more = ", ..." if unknown.sum() > 10 else ""
        raise _Label(f"{path}: {int(counts[unknown].sum())} pixels have colours not in layout "
                     f"'{layout.name}' colour_map: {listed}{more}. Add them to colour_map (map a "
                     f"colour to {layout.ignore_label} to ignore it) or fix the mask.")
    return labels[inverse].reshape(codes.shape).astype(np.uint8)


def _apply_label_table(raw, path, layout):
    mapped = layout.label_table[raw]
    invalid = mapped < 0
    if invalid.any():
        values, counts = np.unique(raw[invalid], return_counts=True)
        detail = ", ".join(f"{v}: {n} px" for v, n in zip(values[:10].tolist(),
                                                          counts[:10].tolist()))
        more = ", ..." if len(values) > 10 else ""
        raise _Label(f"{path}: {int(counts.sum())} pixels hold label value(s) that layout "
                     f"'{layout.name}' does not accept ({detail}{more}); valid are class ids "
                     f"0..{layout.num_classes - 1} and the ignore label "
                     f"{layout.ignore_label} (after the layout's raw-value mapping). Fix the mask, "
                     "use the right layout, or give the layout a label_table / ignore_label that "
                     "covers these values.")
    return mapped.astype(np.uint8)


def _load_mask(source, path, layout):
    def handler(img):
        raw, mapped = _raw_mask(img, path, layout)
        return raw if mapped else _apply_label_table(raw, path, layout)

    return _decode(source, path, "mask", handler)


def load_mask(path, layout):
    """Reads a mask file as uint8 `[H, W]` class ids (or the layout's ignore label).

    Palette PNGs keep their indices; raw values go through `layout.label_table` (e.g. Cityscapes
    labelIds -> trainIds); RGB masks go through `layout.colour_map`. No EXIF rotation.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty/corrupt file, unknown colour, 16-bit value >= 256, or a value the layout
            does not accept; the message names the file, the values and their pixel counts.

    Example:

    ```python
    mask = load_mask("aachen_000000_000019_gtFine_labelIds.png", "cityscapes")  # trainIds
    ```
    """
    path = os.fspath(path)
    return _load_mask(path, path, get_layout(layout))


def check_same_size(image, mask, image_path, mask_path, orientation=1):
    """Raises a ValueError naming both files and sizes when image and mask differ in size.

    `orientation` (the image's EXIF orientation) adds a hint when the mask matches the
    unrotated image.

    Example:

    ```python
    check_same_size(image, mask, "a.jpg", "a.png")
    ```
    """
    if image.shape[:2] == mask.shape[:2]:
        return
    (ih, iw), (mh, mw) = image.shape[:2], mask.shape[:2]
    hint = "Image and mask must have the same size; re-export the mask at the image size."
    if orientation in range(5, 9) and (mh, mw) == (iw, ih):
        hint = (f"The image has EXIF orientation {orientation} (rotated by 90 degrees) and is "
                "loaded rotated, but the mask matches the unrotated pixels. Rotate the mask to "
                "match the displayed image, or strip the EXIF orientation from the image "
                "(e.g. re-save it with Pillow after ImageOps.exif_transpose).")
    elif orientation in range(2, 9):
        hint += f" (The image has EXIF orientation {orientation} and is loaded transposed.)"
    raise ValueError(f"Image {image_path} is {iw}x{ih} (WxH) but its mask {mask_path} is "
                     f"{mw}x{mh}. {hint}")


def load_example(example, layout):
    """Loads one `Example`: `(image uint8 [H, W, 3], mask uint8 [H, W] or None)`.

    Raises a ValueError naming both files and both sizes when they differ.

    Example:

    ```python
    image, mask = load_example(Example("a.jpg", "a.png"), folder_layout(2))
    ```
    """
    layout = get_layout(layout)
    image_path = os.fspath(example.image_path)
    image, orientation = _load_image(image_path, image_path)
    if example.mask_path is None:
        return image, None
    mask_path = os.fspath(example.mask_path)
    mask = _load_mask(mask_path, mask_path, layout)
    check_same_size(image, mask, image_path, mask_path, orientation)
    return image, mask


def decode_image_bytes(data, name="<bytes>"):
    """`load_image` for encoded bytes (e.g. a TFRecord field); `name` goes in error messages.

    Example:

    ```python
    image = decode_image_bytes(open("a.png", "rb").read(), "a.png")
    ```
    """
    return _load_image(bytes(data), name)[0]


def decode_mask_bytes(data, layout, name="<bytes>"):
    """`load_mask` for encoded bytes; `name` goes in error messages.

    Example:

    ```python
    mask = decode_mask_bytes(open("a.png", "rb").read(), "camvid", "a.png")
    ```
    """
    return _load_mask(bytes(data), name, get_layout(layout))
