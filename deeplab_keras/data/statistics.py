"""Label statistics over a dataset: a checking scan of every pair, pixel counts per class and
loss weights from them."""

import numpy as np

from deeplab_keras.data.decode import check_same_size
from deeplab_keras.data.decode import image_size
from deeplab_keras.data.decode import load_mask


def scan_examples(examples, layout, num_classes=None, progress=True):
    """Checks every example before training, fast: each mask is decoded (its values must be
    classes or the ignore label) and must have its image's size (read from the image header).

    Returns the per-class pixel counts (as `class_pixel_counts`). Raises ValueError naming the
    first bad file, so a bad mask fails in seconds instead of hours into training.

    Example:

    ```python
    counts = scan_examples(list_examples(layout, "mydata", "train"), layout)
    ```
    """
    import keras

    num_classes = num_classes or layout.num_classes
    counts = np.zeros(num_classes, np.int64)
    bar = keras.utils.Progbar(len(examples), unit_name="pair") if progress else None
    for i, example in enumerate(examples):
        if example.mask_path is None:
            raise ValueError(f"{example.image_path}: no mask; training needs every mask.")
        mask = load_mask(example.mask_path, layout).astype(np.int64)
        (height, width), orientation = image_size(example.image_path)
        check_same_size(np.empty((height, width, 0)), mask, example.image_path,
                        example.mask_path, orientation)
        valid = mask != layout.ignore_label
        if valid.any() and mask[valid].max() >= num_classes:
            raise ValueError(f"{example.mask_path}: label {mask[valid].max()} >= num_classes "
                             f"{num_classes}.")
        counts += np.bincount(mask[valid], minlength=num_classes)[:num_classes]
        if bar is not None:
            bar.update(i + 1)
    return counts


def class_pixel_counts(examples, layout, num_classes=None, progress=True):
    """Pixels of each class over all masks (ignore label excluded), int64 `[num_classes]`;
    every pair is checked on the way (`scan_examples`).

    Example:

    ```python
    counts = class_pixel_counts(list_examples("camvid", root, "train"), get_layout("camvid"))
    ```
    """
    return scan_examples(examples, layout, num_classes, progress)


def median_frequency_weights(examples, layout, num_classes=None, progress=True):
    """Median-frequency balancing (Eigen & Fergus 2015, used by SegNet on CamVid).

    weight_c = median(freq) / freq_c, where freq_c = pixels of class c / pixels of the
    images in which c appears. Classes that never appear get weight 0 (they cannot be
    learned from this data) and a warning.
    """
    import keras

    num_classes = num_classes or layout.num_classes
    pixels = np.zeros(num_classes, np.float64)
    present_in = np.zeros(num_classes, np.float64)
    bar = keras.utils.Progbar(len(examples), unit_name="mask") if progress else None
    for i, example in enumerate(examples):
        mask = load_mask(example.mask_path, layout).astype(np.int64)
        valid = mask != layout.ignore_label
        counts = np.bincount(mask[valid], minlength=num_classes)[:num_classes]
        pixels += counts
        present_in += (counts > 0) * valid.sum()
        if bar is not None:
            bar.update(i + 1)
    seen = present_in > 0
    freq = np.where(seen, pixels / np.maximum(present_in, 1), 0.0)
    if not seen.any():
        raise ValueError("median_frequency_weights: no labelled pixels in the masks.")
    weights = np.where(seen, np.median(freq[seen]) / np.maximum(freq, 1e-12), 0.0)
    if not seen.all():
        missing = [layout.class_names[c] if c < len(layout.class_names) else c
                   for c in np.flatnonzero(~seen)]
        print(f"WARNING: classes {missing} never appear in these masks; weight 0.")
    return [float(w) for w in weights]
