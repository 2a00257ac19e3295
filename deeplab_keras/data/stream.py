"""A deterministic, resumable stream of training samples and batches.

Samples are numbered by a global index `g = 0, 1, 2, ...` that runs on across epochs. For `n`
examples and a `seed`:

* `epoch = g // n`, `position = g % n`;
* the epoch's order is `np.random.default_rng([seed, epoch]).permutation(n)` (identity when
  `shuffle=False`), and sample `g` is example `order[position]`;
* its augmentation uses `np.random.default_rng([seed, epoch, position])`.

So sample `g` depends only on `(seed, g)` (and the example list): batch `b` holds samples
`b * B .. b * B + B - 1` (a batch can straddle two epochs), and restarting training at step `k`
with the same seed gives bit-identical batches to an uninterrupted run, with any number of
workers and in any order of evaluation. Every example is seen exactly once per epoch.

Example:

```python
from deeplab_keras import data
layout = data.get_layout("camvid")
train = data.list_examples(layout, "/data/camvid", "train")
images, masks = data.load_batch(train, layout, batch_index=0, batch_size=8,
                                crop_size=(321, 321), seed=0)
# images: float32 [8, 321, 321, 3] in 0..255, masks: int32 [8, 321, 321]
```
"""

import functools
import math

import numpy as np

from deeplab_keras.data.augment import MEAN_PIXEL
from deeplab_keras.data.augment import augment as augment_pair
from deeplab_keras.data.augment import center_pad_or_crop
from deeplab_keras.data.augment import check_size
from deeplab_keras.data.decode import load_example
from deeplab_keras.data.layouts import get_layout


class ExampleSource:
    """Random access to decoded `(image, mask)` pairs of an example list.

    The stream functions accept either a list of `Example` (+ a layout) or any object with
    `__len__`, `load(index) -> (image, mask)` and `ignore_label` (e.g. `TFRecordSource`).

    Example:

    ```python
    source = ExampleSource(examples, "camvid")
    image, mask = source.load(0)
    ```
    """

    def __init__(self, examples, layout):
        self.examples = list(examples)
        self.layout = get_layout(layout)
        self.ignore_label = self.layout.ignore_label

    def __len__(self):
        return len(self.examples)

    def load(self, index):
        return load_example(self.examples[index], self.layout)

    def name(self, index):
        return self.examples[index].name


def as_source(examples, layout=None):
    """`examples` if it already is a source (has `load`), else `ExampleSource(examples, layout)`.

    Example:

    ```python
    source = as_source(train, "camvid")  # or as_source(TFRecordSource("records/train-*"))
    ```
    """
    if hasattr(examples, "load") and hasattr(examples, "ignore_label"):
        return examples
    if layout is None:
        raise ValueError("A layout is needed to load a list of examples.")
    return ExampleSource(examples, layout)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; received {seed!r}.")
    return int(seed)


@functools.lru_cache(maxsize=16)
def _permutation(num_examples, seed, epoch):
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    order.setflags(write=False)
    return order


def epoch_order(num_examples, seed, epoch, shuffle=True):
    """The order of the examples in `epoch` (a permutation of `range(num_examples)`).

    Example:

    ```python
    epoch_order(5, seed=0, epoch=1)  # e.g. array([3, 0, 4, 1, 2])
    ```
    """
    if num_examples < 1:
        raise ValueError("The example list is empty; there is nothing to sample.")
    if not shuffle:
        return np.arange(num_examples)
    return _permutation(int(num_examples), _check_seed(seed), int(epoch))


def sample_example_index(num_examples, seed, global_index, shuffle=True):
    """Which example the global sample `global_index` is.

    Example:

    ```python
    sample_example_index(10, seed=0, global_index=13)  # example of epoch 1, position 3
    ```
    """
    if global_index < 0:
        raise ValueError(f"global_index must be >= 0; received {global_index}.")
    epoch, position = divmod(int(global_index), int(num_examples))
    return int(epoch_order(num_examples, seed, epoch, shuffle)[position])


def sample_rng(num_examples, seed, global_index):
    """The augmentation generator of global sample `global_index`: depends only on
    `(seed, epoch, position)`.

    Example:

    ```python
    rng = sample_rng(10, seed=0, global_index=13)  # == np.random.default_rng([0, 1, 3])
    ```
    """
    epoch, position = divmod(int(global_index), int(num_examples))
    return np.random.default_rng([_check_seed(seed), epoch, position])


def load_sample(examples, layout, global_index, crop_size, seed, augment=True, shuffle=True,
                scale_range=(0.5, 2.0), flip=True, pad_value=MEAN_PIXEL):
    """Loads global sample `global_index`: `(image uint8 [h, w, 3], mask uint8 [h, w])`.

    With `augment=False` the image is padded bottom/right and centre-cropped to `crop_size`
    (no randomness). `examples` may be a list of `Example` or a source (see `ExampleSource`).

    Example:

    ```python
    image, mask = load_sample(train, layout, global_index=123, crop_size=(321, 321), seed=0)
    ```
    """
    source = as_source(examples, layout)
    n = len(source)
    if n == 0:
        raise ValueError("The example list is empty; check list_examples(...) and the split.")
    index = sample_example_index(n, seed, global_index, shuffle)
    image, mask = source.load(index)
    if mask is None:
        name = source.name(index) if hasattr(source, "name") else index
        raise ValueError(f"Example {name} has no mask; training needs a mask for every image "
                         "(list_examples(..., require_masks=True)).")
    if augment:
        return augment_pair(image, mask, sample_rng(n, seed, global_index), crop_size,
                            scale_range=scale_range, flip=flip, ignore_label=source.ignore_label,
                            pad_value=pad_value)
    return center_pad_or_crop(image, mask, crop_size, source.ignore_label, pad_value)


def load_batch(examples, layout, batch_index, batch_size, crop_size, seed, augment=True,
               shuffle=True, scale_range=(0.5, 2.0), flip=True, pad_value=MEAN_PIXEL):
    """Loads batch `batch_index`: samples `batch_index * batch_size ... + batch_size - 1`.

    Returns:
        `(images float32 [B, h, w, 3] in 0..255, masks int32 [B, h, w])` with
        `(h, w) = crop_size`; masks hold class ids and the layout's ignore label.

    Example:

    ```python
    images, masks = load_batch(train, layout, batch_index=1000, batch_size=8,
                               crop_size=(321, 321), seed=0)  # step 1000, same as ever
    ```
    """
    source = as_source(examples, layout)
    batch_index, batch_size = int(batch_index), int(batch_size)
    if batch_size < 1 or batch_index < 0:
        raise ValueError(f"batch_size must be >= 1 and batch_index >= 0; received "
                         f"{batch_size} and {batch_index}.")
    h, w = check_size(crop_size)
    images = np.empty((batch_size, h, w, 3), np.float32)
    masks = np.empty((batch_size, h, w), np.int32)
    first = batch_index * batch_size
    for i in range(batch_size):
        images[i], masks[i] = load_sample(source, None, first + i, (h, w), seed, augment, shuffle,
                                          scale_range, flip, pad_value)
    return images, masks


def steps_per_epoch(num_examples, batch_size):
    """`ceil(num_examples / batch_size)`: the steps that show every example at least once.

    Example:

    ```python
    steps_per_epoch(367, 8)  # 46
    ```
    """
    return math.ceil(num_examples / batch_size)


class iterate_eval:  # noqa: N801 - used like the generator function it replaced
    """Yields `(name, image uint8 [H, W, 3], mask uint8 [H, W] or None)` for every example,
    once, in order, at full size and without augmentation. Needs no TensorFlow. `len()` is the
    number of examples, so progress bars know their total.

    Example:

    ```python
    for name, image, mask in iterate_eval(val, layout):
        logits = model.predict(image[None].astype("float32"), verbose=0)
    ```
    """

    def __init__(self, examples, layout):
        self.source = as_source(examples, layout)
        self.index = 0

    def __len__(self):
        return len(self.source)

    def __iter__(self):
        return self

    def __next__(self):
        if self.index >= len(self.source):
            raise StopIteration
        index, self.index = self.index, self.index + 1
        source = self.source
        name = source.name(index) if hasattr(source, "name") else str(index)
        image, mask = source.load(index)
        return name, image, mask
