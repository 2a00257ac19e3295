"""Pictures of segmentations: side-by-side panels, legends, titles, and the PNGs that
`deeplab-keras predict` and the demo write.

Colours come from `deeplab_keras.data.classes` (`colorize`, the palettes); the colour mask and
overlay of one image are made by `deeplab_keras.inference.segment`.
"""

import os
import time

import numpy as np

from deeplab_keras import files
from deeplab_keras import inference

LEGEND_ALL_CLASSES = 32


def panel(images, gap=4):
    """Places RGB uint8 images of equal height side by side with a white gap."""
    height = images[0].shape[0]
    if any(im.shape[0] != height for im in images):
        raise ValueError("panel: all images must have the same height.")
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts = []
    for im in images:
        parts += [im, spacer]
    return np.concatenate(parts[:-1], axis=1)


def legend(class_names, palette, width, present=None, swatch=14):
    """A white strip listing each class's colour swatch and name, wrapped to `width` pixels.

    `present` (a set of label ids) limits it to the classes that appear.

    Example:

    ```python
    from deeplab_keras.data import classes
    strip = legend(classes.CAMVID_CLASSES, classes.CAMVID_PALETTE, width=480)
    ```
    """
    from PIL import Image
    from PIL import ImageDraw

    ids = [i for i in range(len(class_names)) if present is None or i in present]
    cell = swatch + 8 + 7 * max((len(str(class_names[i])) for i in ids), default=1)
    per_row = max(1, width // max(cell, 1))
    rows = max(1, -(-len(ids) // per_row))
    strip = Image.new("RGB", (width, rows * (swatch + 6) + 6), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for k, i in enumerate(ids):
        x, y = (k % per_row) * cell + 4, (k // per_row) * (swatch + 6) + 4
        draw.rectangle([x, y, x + swatch, y + swatch], fill=tuple(int(v) for v in palette[i]),
                       outline=(0, 0, 0))
        draw.text((x + swatch + 4, y + 1), str(class_names[i]), fill=(0, 0, 0))
    return np.asarray(strip)


def titled(image, title, height=16):
    """`image` with a white title bar above it."""
    from PIL import Image
    from PIL import ImageDraw

    bar = Image.new("RGB", (image.shape[1], height), (255, 255, 255))
    ImageDraw.Draw(bar).text((4, 2), title, fill=(0, 0, 0))
    return np.concatenate([np.asarray(bar), np.asarray(image, np.uint8)], axis=0)


def stack(pictures, gap=4):
    """Stacks RGB uint8 pictures vertically (narrower ones padded white on the right)."""
    width = max(p.shape[1] for p in pictures)
    parts = []
    for p in pictures:
        if p.shape[1] < width:
            p = np.concatenate([p, np.full((p.shape[0], width - p.shape[1], 3), 255, np.uint8)],
                               axis=1)
        parts += [p, np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=0)


def show(picture, max_width=960, quality=90):
    """Shows an RGB uint8 array (or a PIL image) in a notebook as a JPEG of at most `max_width`
    pixels (small notebooks; PNG photos weigh ~10x more). Needs IPython.

    Example:

    ```python
    visualize.show(visualize.segmentation_panel(result, image, model.class_names, palette))
    ```
    """
    import io

    from PIL import Image

    try:
        from IPython.display import Image as NotebookImage
        from IPython.display import display
    except ImportError as error:
        raise ImportError("visualize.show displays pictures in a notebook and needs IPython "
                          "(pip install ipython); use save_png to write a file.") from error
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(
        np.asarray(picture, np.uint8))
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)),
                             Image.LANCZOS)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    display(NotebookImage(data=buffer.getvalue(), format="jpeg"))


def save_png(picture, path):
    """Writes an RGB uint8 array (or a PIL image) as a PNG, atomically; returns `path`.

    Example:

    ```python
    save_png(panel([image, result.color_mask]), "predictions/street_panel.png")
    ```
    """
    from PIL import Image

    image = picture if isinstance(picture, Image.Image) else Image.fromarray(
        np.asarray(picture, np.uint8))
    with files.atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def segmentation_panel(result, image, class_names=None, palette=None):
    """image | colour mask | overlay as one RGB uint8 array, over a legend when `class_names`
    and `palette` are given (every class for up to `LEGEND_ALL_CLASSES` classes, else the ones
    present).

    Example:

    ```python
    result = deeplab_keras.segment(model, image)
    PIL.Image.fromarray(segmentation_panel(result, image, model.class_names,
                                           deeplab_keras.inference.palette_of(model)))
    ```
    """
    side_by_side = panel([np.asarray(image, np.uint8), result.color_mask, result.overlay])
    if class_names is None or palette is None:
        return side_by_side
    present = (None if len(class_names) <= LEGEND_ALL_CLASSES
               else set(np.unique(result.labels).tolist()))
    return stack([side_by_side, legend(class_names, palette, side_by_side.shape[1], present)])


def save_segmentation(result, image, output_dir, stem, tag=None, class_names=None,
                      palette=None):
    """Writes `<stem>[_<tag>]_mask.png`, `_overlay.png` and `_panel.png` (image | mask |
    overlay, over a legend when `class_names` and `palette` are given: every class for up to
    `LEGEND_ALL_CLASSES` classes, else the ones present); returns the paths.

    Example:

    ```python
    image = deeplab_keras.inference.load_rgb("street.jpg")
    result = deeplab_keras.segment(model, image)
    save_segmentation(result, image, "predictions", "street", model.class_names,
                      deeplab_keras.inference.palette_of(model))
    ```
    """
    base = f"{stem}_{tag}" if tag else stem
    side_by_side = segmentation_panel(result, image, class_names, palette)
    pictures = (("mask", result.color_mask), ("overlay", result.overlay),
                ("panel", side_by_side))
    return [save_png(picture, os.path.join(output_dir, f"{base}_{suffix}.png"))
            for suffix, picture in pictures]


def segment_and_save(model, paths, output_dir, crf=None, scales=(1.0,), flip=False, tag=None):
    """Segments each image file (decoded once) and writes its mask, overlay and panel PNGs
    (the panel with a legend of the model's class names); prints the classes found.

    Example:

    ```python
    segment_and_save(model, ["a.jpg", "b.jpg"], "predictions", crf=True)
    ```
    """
    names = inference.class_names_of(model)
    palette = inference.palette_of(model, len(names))
    written = []
    for path in paths:
        image = inference.load_rgb(path)
        start = time.perf_counter()
        result = inference.segment(model, image, crf=crf, palette=palette, scales=scales,
                                   flip=flip)
        seconds = time.perf_counter() - start
        stem = os.path.splitext(os.path.basename(path))[0]
        written += save_segmentation(result, image, output_dir, stem, tag, names, palette)
        found = ", ".join(f"{name} {100 * share:.0f}%"
                          for name, share in result.class_fractions(names).items())
        print(f"  {os.path.basename(path)}: {image.shape[1]}x{image.shape[0]}, "
              f"{seconds:.2f} s; classes found: {found}")
    return written
