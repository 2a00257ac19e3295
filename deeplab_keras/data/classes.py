"""Every dataset's class names and colours, written once; layouts, records, visualisation and
the demo read them from here. Also `colorize`, which draws a label map with a palette.

Palettes are `[num_classes, 3]` uint8 RGB arrays. `palette(name, num_classes)` gives a named
one ("voc", "cityscapes", "camvid") at any class count.

Example:

```python
from deeplab_keras.data import classes

classes.CAMVID_CLASSES[3], classes.CAMVID_PALETTE[3]     # ('Road', array([128, 64, 128]))
rgb = classes.colorize(label_map, classes.palette("voc", 21))
```
"""

import numpy as np

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")

# Cityscapes labelId -> trainId, from cityscapesScripts `helpers/labels.py` (trainId 255 and -1
# entries are ignored). name: (labelId, trainId, colour)
CITYSCAPES_LABELS = (
    ("road", 7, 0, (128, 64, 128)), ("sidewalk", 8, 1, (244, 35, 232)),
    ("building", 11, 2, (70, 70, 70)), ("wall", 12, 3, (102, 102, 156)),
    ("fence", 13, 4, (190, 153, 153)), ("pole", 17, 5, (153, 153, 153)),
    ("traffic light", 19, 6, (250, 170, 30)), ("traffic sign", 20, 7, (220, 220, 0)),
    ("vegetation", 21, 8, (107, 142, 35)), ("terrain", 22, 9, (152, 251, 152)),
    ("sky", 23, 10, (70, 130, 180)), ("person", 24, 11, (220, 20, 60)),
    ("rider", 25, 12, (255, 0, 0)), ("car", 26, 13, (0, 0, 142)),
    ("truck", 27, 14, (0, 0, 70)), ("bus", 28, 15, (0, 60, 100)),
    ("train", 31, 16, (0, 80, 100)), ("motorcycle", 32, 17, (0, 0, 230)),
    ("bicycle", 33, 18, (119, 11, 32)),
)

PASCAL_CONTEXT_CLASSES = (
    "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book", "bottle",
    "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth", "computer", "cow",
    "cup", "curtain", "dog", "door", "fence", "floor", "flower", "food", "grass", "ground",
    "horse", "keyboard", "light", "motorbike", "mountain", "mouse", "person", "plate", "platform",
    "pottedplant", "road", "rock", "sheep", "shelves", "sidewalk", "sign", "sky", "snow", "sofa",
    "table", "track", "train", "tree", "truck", "tvmonitor", "wall", "water", "window", "wood")

PERSON_PART_CLASSES = ("background", "head", "torso", "upper_arms", "lower_arms", "upper_legs",
                       "lower_legs")

ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug",
    "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning",
    "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel", "pole",
    "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van",
    "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool",
    "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball",
    "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light",
    "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower",
    "radiator", "glass", "clock", "flag")

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
                  "Car", "Pedestrian", "Bicyclist")
# The SegNet tutorial's colours (the README order), label 0..10; label 11 (void) is black.
CAMVID_PALETTE = np.array([
    [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
    [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
], np.uint8)
CAMVID_VOID = 11

CITYSCAPES_CLASSES = tuple(name for name, _, _, _ in CITYSCAPES_LABELS)  # in trainId order
CITYSCAPES_PALETTE = np.array([colour for _, _, _, colour in CITYSCAPES_LABELS], np.uint8)
# TF research/deeplab ADE20K: 150 classes + label 0 "other" (ignored in evaluation).
ADE20K_WITH_OTHER_CLASSES = ("other",) + ADE20K_CLASSES


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


def _first(colours, num_classes):
    """`colours[:num_classes]`, padded with black when there are fewer."""
    out = np.zeros((num_classes, 3), np.uint8)
    n = min(num_classes, len(colours))
    out[:n] = colours[:n]
    return out


PALETTES = {
    "voc": voc_palette,
    "cityscapes": lambda num_classes: _first(CITYSCAPES_PALETTE, num_classes),
    "camvid": lambda num_classes: _first(CAMVID_PALETTE, num_classes),
}


def palette(name, num_classes):
    """`[num_classes, 3]` uint8 colours of the named palette (one of `PALETTES`).

    Example:

    ```python
    palette("cityscapes", 19)[0]   # road: [128, 64, 128]
    ```
    """
    if name not in PALETTES:
        raise ValueError(f"Unknown palette {name!r}; available: {sorted(PALETTES)}.")
    return PALETTES[name](int(num_classes))


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


__all__ = ["ADE20K_CLASSES", "ADE20K_WITH_OTHER_CLASSES", "CAMVID_CLASSES", "CAMVID_PALETTE",
           "CAMVID_VOID", "CITYSCAPES_CLASSES", "CITYSCAPES_LABELS", "CITYSCAPES_PALETTE",
           "PALETTES", "PASCAL_CONTEXT_CLASSES", "PERSON_PART_CLASSES", "VOC_CLASSES",
           "colorize", "palette", "voc_palette"]
