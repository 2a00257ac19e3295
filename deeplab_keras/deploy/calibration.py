"""Representative images for full-integer quantisation, from a folder, a list or an array."""

import os

import numpy as np

DEFAULT_IMAGES = 100


def _image_files(folder):
    from deeplab_keras.data.pairs import IMAGE_EXTENSIONS

    found = []
    for root, _, names in os.walk(folder):
        found.extend(os.path.join(root, n) for n in names
                     if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)
    return sorted(found)


def calibration_images(source, input_size, max_images=DEFAULT_IMAGES):
    """uint8 `[1, H, W, 3]` batches at `input_size` (bilinear resize), at most `max_images`.

    `source`: a folder (searched recursively), a list of image paths, or an array
    `[N, h, w, 3]`. Spread evenly over what was found when there are more than `max_images`.
    """
    from PIL import Image

    from deeplab_keras.data import decode
    from deeplab_keras.deploy.options import ExportError

    if isinstance(source, (str, os.PathLike)):
        folder = os.fspath(source)
        if not os.path.isdir(folder):
            raise ExportError(f"export: calibration_data {folder!r} is not a folder of images.")
        paths = _image_files(folder)
        if not paths:
            raise ExportError(f"export: calibration_data {folder!r} holds no images "
                              "(.jpg, .png, ...).")
        items = paths
    elif isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3:
            raise ExportError("export: calibration_data as an array must be [N, H, W, 3] RGB; "
                              f"received shape {source.shape}.")
        items = list(source)
    else:
        items = list(source)
        if not items:
            raise ExportError("export: calibration_data is an empty list.")
    if len(items) > max_images:
        items = [items[i] for i in np.linspace(0, len(items) - 1, max_images).astype(int)]
    height, width = input_size
    batches = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            image = decode.load_image(os.fspath(item))
        else:
            from deeplab_keras.data.rgb import as_rgb_array

            image = np.clip(as_rgb_array(item, "calibration image") + 0.5, 0, 255).astype(
                np.uint8)
        if image.shape[:2] != (height, width):
            image = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
        batches.append(image[None])
    return batches


__all__ = ["DEFAULT_IMAGES", "calibration_images"]
