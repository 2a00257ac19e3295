"""Dataset layouts: where the image/mask pairs live and how raw mask values become class ids.

A `Layout` describes one dataset convention: the number of classes, the ignore label, the class
names and colours, a 256-entry label table that maps the raw mask value to a class id (or to the
ignore label), and a function that lists the `(image, mask)` pairs of a split on disk.

Every built-in layout uses **255 as the ignore label**, so a loss or metric built with
`ignore_class=255` works for all of them (CamVid's void label 11 is mapped to 255).

Built-in layouts (paths relative to `data_dir`):

* `folder` (your classes): `images/[split/]*.jpg|png|...` + `masks/[split/]<same stem>.png`.
* `voc_aug` (21): `JPEGImages/*.jpg` + `SegmentationClassAug/*.png`, split lists
  `ImageSets/Segmentation/{train_aug,train,val}.txt`.
* `cityscapes` (19): `leftImg8bit/{split}/{city}/*_leftImg8bit.png` +
  `gtFine/{split}/{city}/*_gtFine_labelIds.png`.
* `pascal_context` (59): `JPEGImages/*.jpg` + `SegmentationClassContext/*.png`, split lists
  `ImageSets/SegmentationContext/{train,val}.txt`.
* `person_part` (7): `JPEGImages/*.jpg` + `SegmentationPart/*.png`, split lists
  `list/{split}_id.txt` or `ImageSets/Person/{split}.txt`.
* `ade20k` (150): `[ADEChallengeData2016/]images/{training,validation}/*.jpg` +
  `annotations/{training,validation}/*.png`.
* `camvid` (11): `{split}/*.png` + `{split}annot/*.png` (the SegNet tutorial layout).

Example:

```python
from deeplab_keras import data
layout = data.get_layout("cityscapes")
examples = data.list_examples(layout, "/data/cityscapes", "train")
mine = data.folder_layout(num_classes=3, class_names=("bg", "cat", "dog"))
examples = data.list_examples(mine, "/data/pets", "train")  # images/train + masks/train
```
"""

import dataclasses
import functools
import os
from typing import Callable
from typing import Optional

import numpy as np

from deeplab_keras.data.classes import ADE20K_CLASSES
from deeplab_keras.data.classes import CAMVID_CLASSES
from deeplab_keras.data.classes import CAMVID_PALETTE
from deeplab_keras.data.classes import CAMVID_VOID
from deeplab_keras.data.classes import CITYSCAPES_CLASSES
from deeplab_keras.data.classes import CITYSCAPES_LABELS
from deeplab_keras.data.classes import CITYSCAPES_PALETTE
from deeplab_keras.data.classes import PASCAL_CONTEXT_CLASSES
from deeplab_keras.data.classes import PERSON_PART_CLASSES
from deeplab_keras.data.classes import VOC_CLASSES
from deeplab_keras.data.classes import voc_palette
from deeplab_keras.data.pairs import find_ade20k_pairs
from deeplab_keras.data.pairs import find_camvid_pairs
from deeplab_keras.data.pairs import find_cityscapes_pairs
from deeplab_keras.data.pairs import find_folder_pairs
from deeplab_keras.data.pairs import find_list_pairs

IGNORE_LABEL = 255


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """A dataset convention: classes, ignore label, label table and where pairs live.

    Args:
        name: layout name, used in error messages.
        num_classes: number of classes; class ids are `0..num_classes-1`.
        ignore_label: the mask value that the loss and metrics skip (255 by default). Must not be
            a class id.
        class_names: tuple of `num_classes` names (default `("class_0", ...)`).
        palette: `[num_classes, 3]` uint8 colours for visualisation, or None.
        label_table: int16 `[256]` table mapping a raw mask value to a class id, to
            `ignore_label`, or to -1 for "this raw value is invalid" (loading a mask that holds an
            invalid value raises a ValueError naming the file, the values and their pixel
            counts). Default: `0..num_classes-1` and `ignore_label` map to themselves, every other
            value is invalid.
        colour_map: for masks saved as RGB colour images: `{(r, g, b): class id or ignore}`.
            The mapped values are final class ids (the label table is not applied to them).
        find_pairs: `find_pairs(data_dir, split, require_masks) -> list[Example]`; a module-level
            function or a `functools.partial` of one so the layout can be pickled (for
            multiprocessing workers).
        splits: the split names the layout knows (documentation and error messages).
        description: the expected directory structure, quoted in "no images found" errors.

    Example:

    ```python
    layout = Layout("mine", num_classes=2, find_pairs=functools.partial(find_folder_pairs))
    ```
    """

    name: str
    num_classes: int
    ignore_label: int = IGNORE_LABEL
    class_names: tuple = ()
    palette: Optional[np.ndarray] = None
    label_table: Optional[np.ndarray] = None
    colour_map: Optional[dict] = None
    find_pairs: Optional[Callable] = None
    splits: tuple = ()
    description: str = ""

    def __post_init__(self):
        n, ignore = int(self.num_classes), int(self.ignore_label)
        if not 1 <= n <= 255:
            raise ValueError(f"Layout '{self.name}': num_classes must be in 1..255 (masks are "
                             f"uint8); received {self.num_classes}.")
        if not 0 <= ignore <= 255 or ignore < n:
            raise ValueError(f"Layout '{self.name}': ignore_label must be in {n}..255 so it is "
                             f"not a class id (num_classes={n}); received {self.ignore_label}.")
        object.__setattr__(self, "num_classes", n)
        object.__setattr__(self, "ignore_label", ignore)
        names = tuple(self.class_names) if self.class_names else tuple(
            f"class_{i}" for i in range(n))
        if len(names) != n:
            raise ValueError(f"Layout '{self.name}': {len(names)} class_names given for "
                             f"num_classes={n}.")
        object.__setattr__(self, "class_names", names)
        if self.palette is not None:
            palette = np.asarray(self.palette)
            if palette.shape != (n, 3) or palette.min() < 0 or palette.max() > 255:
                raise ValueError(f"Layout '{self.name}': palette must be [{n}, 3] values in "
                                 f"0..255; received shape {palette.shape}.")
            object.__setattr__(self, "palette", palette.astype(np.uint8))
        table = default_label_table(n, ignore) if self.label_table is None else np.asarray(
            self.label_table)
        if table.shape != (256,):
            raise ValueError(f"Layout '{self.name}': label_table must have 256 entries (one per "
                             f"uint8 mask value); received shape {table.shape}.")
        bad = sorted(set(np.unique(table).tolist()) - set(range(n)) - {ignore, -1})
        if bad:
            raise ValueError(f"Layout '{self.name}': label_table maps to {bad}, which are neither "
                             f"class ids 0..{n - 1}, the ignore label {ignore}, nor -1 (invalid).")
        table = table.astype(np.int16)
        table.setflags(write=False)
        object.__setattr__(self, "label_table", table)
        if self.colour_map is not None:
            object.__setattr__(self, "colour_map", _check_colour_map(self.colour_map, n, ignore,
                                                                     self.name))
        object.__setattr__(self, "splits", tuple(self.splits))

    def __repr__(self):
        return (f"Layout(name={self.name!r}, num_classes={self.num_classes}, "
                f"ignore_label={self.ignore_label})")


def default_label_table(num_classes, ignore_label=IGNORE_LABEL):
    """The identity label table: classes and the ignore label kept, other values invalid (-1).

    Example:

    ```python
    table = default_label_table(21)  # table[3] == 3, table[255] == 255, table[40] == -1
    ```
    """
    table = np.full(256, -1, np.int16)
    table[:num_classes] = np.arange(num_classes)
    table[ignore_label] = ignore_label
    return table


def _check_colour_map(colour_map, num_classes, ignore_label, name):
    checked = {}
    for colour, label in dict(colour_map).items():
        rgb = tuple(int(c) for c in colour)
        if len(rgb) != 3 or min(rgb) < 0 or max(rgb) > 255:
            raise ValueError(f"Layout '{name}': colour_map key {colour!r} is not an (r, g, b) "
                             "triple of 0..255 values.")
        if not (0 <= int(label) < num_classes or int(label) == ignore_label):
            raise ValueError(f"Layout '{name}': colour_map maps {rgb} to {label}, which is "
                             f"neither a class id 0..{num_classes - 1} nor the ignore label "
                             f"{ignore_label}.")
        checked[rgb] = int(label)
    return checked


# ----------------------------------------------------------------------------------------------
# Label tables.


def _shift_down_table(num_classes):
    """Raw 0 -> ignore (255), raw v in 1..num_classes -> v - 1; 255 stays ignore."""
    table = np.full(256, -1, np.int16)
    table[0] = IGNORE_LABEL
    table[1:num_classes + 1] = np.arange(num_classes)
    table[IGNORE_LABEL] = IGNORE_LABEL
    return table


def _cityscapes_table():
    # Every labelId that has no trainId (0..6, 9, 10, 14..16, 18, 29, 30, and any other value,
    # e.g. the -1 license plate stored as 255) is ignored, as in cityscapesScripts.
    table = np.full(256, IGNORE_LABEL, np.int16)
    for _, label_id, train_id, _ in CITYSCAPES_LABELS:
        table[label_id] = train_id
    return table


def _camvid_table():
    table = default_label_table(len(CAMVID_CLASSES))
    table[CAMVID_VOID] = IGNORE_LABEL
    return table


def read_palette_png(path, num_classes):
    """Reads a palette image whose pixel `i` (row-major) is the colour of label `i`.

    Example:

    ```python
    palette = read_palette_png("/data/camvid/palette11.png", 11)  # [11, 3] uint8
    ```
    """
    from PIL import Image

    with Image.open(path) as img:
        colours = np.asarray(img.convert("RGB")).reshape(-1, 3)
    if len(colours) < num_classes:
        raise ValueError(f"Palette image {path} holds {len(colours)} colours; {num_classes} "
                         "are needed (pixel i = colour of label i).")
    return np.array(colours[:num_classes], np.uint8)


def folder_layout(num_classes, ignore_label=IGNORE_LABEL, class_names=None, colour_map=None,
                  palette=None, label_table=None, images_dir="images", masks_dir="masks",
                  mask_suffix="", name="folder"):
    """A layout for your own data: an images folder and a masks folder, paired by file stem.

    Masks hold class ids `0..num_classes-1` and `ignore_label` (single-channel or palette PNG),
    or are RGB colour images when `colour_map` is given. Images may be in sub-folders; a mask
    must have the same relative path and stem (plus `mask_suffix`) as its image.

    Args:
        num_classes: number of classes.
        ignore_label: the mask value to ignore (default 255); must be >= num_classes.
        class_names: optional names, one per class.
        colour_map: `{(r, g, b): class id}` for RGB colour masks; map a colour to `ignore_label`
            to ignore it. Colours not in the map raise a ValueError naming the file.
        palette: optional `[num_classes, 3]` colours for visualisation (default: the colour_map's
            colours, else the PASCAL VOC colour map).
        label_table: optional int16 `[256]` raw value -> class table (see `Layout`).
        images_dir, masks_dir: folder names under `data_dir` (default "images" and "masks").
        mask_suffix: appended to the image stem to get the mask stem (e.g. "_mask").
        name: the layout name shown in error messages.

    Example:

    ```python
    layout = folder_layout(3, class_names=("bg", "cat", "dog"))
    examples = list_examples(layout, "/data/pets", "train")  # images/train/*, masks/train/*
    ```
    """
    if palette is None and colour_map:
        by_class = {label: colour for colour, label in dict(colour_map).items()}
        if all(i in by_class for i in range(num_classes)):
            palette = np.array([by_class[i] for i in range(num_classes)], np.uint8)
    if palette is None and 1 <= num_classes <= 255:
        palette = voc_palette(num_classes)
    return Layout(
        name=name, num_classes=num_classes, ignore_label=ignore_label,
        class_names=tuple(class_names) if class_names else (), palette=palette,
        label_table=label_table, colour_map=colour_map,
        find_pairs=functools.partial(find_folder_pairs, images_dir=images_dir,
                                     masks_dir=masks_dir, mask_suffix=mask_suffix,
                                     layout_name=name),
        splits=(), description=f"{images_dir}/[split/] and {masks_dir}/[split/], paired by stem")


def _voc_aug():
    description = ("JPEGImages/{id}.jpg, SegmentationClassAug/{id}.png (or SegmentationClass/) "
                   "and ImageSets/Segmentation/{split}.txt.")
    return Layout(
        name="voc_aug", num_classes=21, class_names=VOC_CLASSES, palette=voc_palette(21),
        find_pairs=functools.partial(
            find_list_pairs, list_paths=("ImageSets/Segmentation/{split}.txt",),
            image_dir="JPEGImages", image_ext=".jpg",
            mask_dirs=("SegmentationClassAug", "SegmentationClass"), layout_name="voc_aug",
            description=description),
        splits=("train_aug", "train", "val"), description=description)


def _cityscapes():
    return Layout(
        name="cityscapes", num_classes=19, class_names=CITYSCAPES_CLASSES,
        palette=CITYSCAPES_PALETTE,
        label_table=_cityscapes_table(), find_pairs=find_cityscapes_pairs,
        splits=("train", "val", "test"),
        description="leftImg8bit/{split}/{city}/*_leftImg8bit.png + gtFine/.../*_labelIds.png")


def _pascal_context():
    description = ("JPEGImages/{id}.jpg, SegmentationClassContext/{id}.png (values 0..59, "
                   "0 = background) and ImageSets/SegmentationContext/{split}.txt.")
    return Layout(
        name="pascal_context", num_classes=59, class_names=PASCAL_CONTEXT_CLASSES,
        palette=voc_palette(60)[1:], label_table=_shift_down_table(59),
        find_pairs=functools.partial(
            find_list_pairs, list_paths=("ImageSets/SegmentationContext/{split}.txt",),
            image_dir="JPEGImages", image_ext=".jpg", mask_dirs=("SegmentationClassContext",),
            layout_name="pascal_context", description=description),
        splits=("train", "val"), description=description)


def _person_part():
    description = ("JPEGImages/{id}.jpg, SegmentationPart/{id}.png (values 0..6, 255 ignore) and "
                   "list/{split}_id.txt or ImageSets/Person/{split}.txt.")
    return Layout(
        name="person_part", num_classes=7, class_names=PERSON_PART_CLASSES,
        palette=voc_palette(7),
        find_pairs=functools.partial(
            find_list_pairs, list_paths=("list/{split}_id.txt", "ImageSets/Person/{split}.txt"),
            image_dir="JPEGImages", image_ext=".jpg", mask_dirs=("SegmentationPart",),
            layout_name="person_part", description=description),
        splits=("train", "val"), description=description)


def _ade20k():
    return Layout(
        name="ade20k", num_classes=150, class_names=ADE20K_CLASSES,
        palette=voc_palette(151)[1:], label_table=_shift_down_table(150),
        find_pairs=find_ade20k_pairs, splits=("training", "validation"),
        description="images/{training,validation}/*.jpg + annotations/.../*.png")


def _camvid(data_dir=None):
    palette = CAMVID_PALETTE
    if data_dir is not None and os.path.isfile(os.path.join(data_dir, "palette11.png")):
        palette = read_palette_png(os.path.join(data_dir, "palette11.png"), len(CAMVID_CLASSES))
    return Layout(
        name="camvid", num_classes=11, class_names=CAMVID_CLASSES, palette=palette,
        label_table=_camvid_table(), find_pairs=find_camvid_pairs,
        splits=("train", "val", "test"),
        description="{split}/*.png + {split}annot/*.png (values 0..10, 11 = void -> 255)")


_BUILDERS = {
    "folder": folder_layout,
    "voc_aug": _voc_aug,
    "cityscapes": _cityscapes,
    "pascal_context": _pascal_context,
    "person_part": _person_part,
    "ade20k": _ade20k,
    "camvid": _camvid,
}


def list_layouts():
    """The names accepted by `get_layout`.

    Example:

    ```python
    list_layouts()  # ['folder', 'voc_aug', 'cityscapes', ...]
    ```
    """
    return list(_BUILDERS)


def get_layout(name, **options):
    """Returns the named `Layout`; a `Layout` is returned unchanged.

    Conventions (all built-in layouts ignore 255):

    * `voc_aug`: 21 classes (background + 20), palette-PNG or grayscale masks whose indices are
      the class ids, 255 = ignore (object borders); other values are errors.
    * `cityscapes`: masks are `*_gtFine_labelIds.png`; the 19 official trainIds are kept
      (labelId 7 road -> 0 ... 33 bicycle -> 18) and every other labelId -> 255.
    * `pascal_context`: the 59-class benchmark. Masks hold 0..59 where 0 is "background / not one
      of the 59" and is ignored: raw 0 -> 255, raw v in 1..59 -> v - 1 (aeroplane = 0 ...
      wood = 58), raw 255 stays 255, anything else is an error. (This is mmseg's
      `reduce_zero_label` convention for PascalContextDataset59.)
    * `person_part`: PASCAL-Person-Part, 7 classes (background, head, torso, upper arms, lower
      arms, upper legs, lower legs), 255 ignore.
    * `ade20k`: SceneParsing 150 classes: raw 0 ("other") -> 255, raw v in 1..150 -> v - 1.
    * `camvid`: 11 classes, raw 11 (void / Unlabelled) -> 255, so the ignore label is 255 like
      the others. The palette is read from `{data_dir}/palette11.png` when `data_dir` is given
      and the file exists, else a built-in copy of the SegNet colours.
    * `folder`: your own data, `options` go to `folder_layout` (`num_classes` is required).

    The palettes of pascal_context, person_part and ade20k are the PASCAL VOC colour map (not
    the datasets' own colour tables).

    Example:

    ```python
    layout = get_layout("ade20k")
    layout.num_classes, layout.ignore_label  # (150, 255)
    camvid = get_layout("camvid", data_dir="/data/camvid")
    mine = get_layout("folder", num_classes=5)
    ```
    """
    if isinstance(name, Layout):
        return name
    if name not in _BUILDERS:
        raise ValueError(f"Unknown layout {name!r}; choose one of {list_layouts()} or build your "
                         "own with folder_layout(num_classes, ...).")
    if name == "folder" and "num_classes" not in options:
        raise ValueError("The 'folder' layout needs num_classes: get_layout('folder', "
                         "num_classes=N, ignore_label=255, class_names=...).")
    try:
        return _BUILDERS[name](**options)
    except TypeError as e:
        raise TypeError(f"get_layout({name!r}): unsupported options {sorted(options)} ({e}).")


def list_examples(layout, data_dir, split=None, require_masks=True):
    """Lists the `Example(image_path, mask_path)` pairs of a split, sorted by path.

    Args:
        layout: a `Layout` or a layout name.
        data_dir: the dataset root (see the table in this module's docstring).
        split: e.g. "train", "val" (`voc_aug` also has "train_aug"; `ade20k` accepts
            "training"/"validation" or "train"/"val"). Optional for the `folder` layout.
        require_masks: True (default): an image without a mask raises a ValueError naming the
            image (nothing is dropped silently). False: such images get `mask_path=None`.

    Raises:
        FileNotFoundError: `data_dir`, the split folder or split list does not exist.
        ValueError: no images found (names the folder and the expected layout), or an image has
            no mask.

    Example:

    ```python
    train = list_examples("camvid", "/data/camvid", "train")
    train[0].image_path, train[0].mask_path
    ```
    """
    layout = get_layout(layout)
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"Dataset directory {data_dir} does not exist (layout "
                                f"'{layout.name}' expects {layout.description}).")
    if split is None and layout.splits:
        raise ValueError(f"Layout '{layout.name}' needs a split, one of {list(layout.splits)}.")
    if layout.find_pairs is None:
        raise ValueError(f"Layout '{layout.name}' has no find_pairs function; build it with "
                         "folder_layout(...) or pass find_pairs=.")
    return list(layout.find_pairs(data_dir, split, require_masks))
