"""Colour-coded masks, overlays and side-by-side panels for label maps."""

import numpy as np

# CamVid's customary colours, label 0..10; 11 (void) is black.
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence",
                  "car", "pedestrian", "bicyclist")
CAMVID_PALETTE = np.array([
    [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
    [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
], np.uint8)


def voc_palette(num_classes=256):
    """The PASCAL VOC colour map (bit-interleaved label -> RGB), `[num_classes, 3]` uint8."""
    palette = np.zeros((num_classes, 3), np.uint8)
    for label in range(num_classes):
        value, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[label] = (r, g, b)
    return palette


def colorize(labels, palette=None, ignore_color=(0, 0, 0)):
    """Maps an integer label map `[H, W]` to an RGB image `[H, W, 3]` uint8.

    Labels outside the palette (e.g. an ignore label) get `ignore_color`.

    Example:

    ```python
    rgb = colorize(np.array([[0, 1], [2, 255]]))
    ```
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"`labels` must be a 2-D label map; received shape {labels.shape}.")
    palette = voc_palette() if palette is None else np.asarray(palette, np.uint8)
    out = np.empty(labels.shape + (3,), np.uint8)
    out[:] = np.asarray(ignore_color, np.uint8)
    inside = (labels >= 0) & (labels < len(palette))
    out[inside] = palette[labels[inside]]
    return out


def overlay(image, color_mask, alpha=0.5):
    """Blends an RGB uint8 image with a colour mask (`alpha` = mask weight)."""
    image = np.asarray(image, np.float32)
    if image.shape != np.shape(color_mask):
        raise ValueError(f"image {image.shape} and mask {np.shape(color_mask)} differ in shape.")
    blended = (1 - alpha) * image + alpha * np.asarray(color_mask, np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


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
    strip = legend(CAMVID_CLASSES, CAMVID_PALETTE, width=480)
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
