"""`SegmentationPyDataset`: the training stream as a `keras.utils.PyDataset` (any backend).

Needs no TensorFlow (nothing here or in its imports imports it), so it is the input pipeline
for JAX hosts. Batches are exactly those of `load_batch` and of `make_tf_dataset`.

Example:

```python
import keras
from deeplab_keras import data
layout = data.get_layout("camvid")
train = data.list_examples(layout, "/data/camvid", "train")
dataset = data.SegmentationPyDataset(train, layout, batch_size=8, crop_size=(321, 321), seed=0,
                                     num_steps=10_000, workers=4)
model.fit(dataset, epochs=1)
# resume at step 6000 with bit-identical data:
rest = data.SegmentationPyDataset(train, layout, 8, (321, 321), seed=0, start_step=6000,
                                  num_steps=4000, workers=4)
```
"""

import keras

from deeplab_keras.data.augment import MEAN_PIXEL
from deeplab_keras.data.augment import check_size
from deeplab_keras.data.layouts import get_layout
from deeplab_keras.data.stream import as_source
from deeplab_keras.data.stream import load_batch


class SegmentationPyDataset(keras.utils.PyDataset):
    """Batches `start_step .. start_step + num_steps - 1` of the deterministic sample stream.

    Item `i` is `load_batch(..., batch_index=start_step + i)`: `(images float32 [B, h, w, 3] in
    0..255, masks int32 [B, h, w])`. The length is `num_steps`, so one Keras "epoch" over this
    dataset is `num_steps` training steps (which may span several passes over the data);
    call `model.fit(dataset, epochs=1)` and build a new dataset with `start_step` to resume.
    With `fit(epochs=E)` each epoch continues the stream (epoch `e` serves batches
    `start_step + e * num_steps + i`) instead of repeating the first epoch's batches.

    Args:
        examples: list of `Example` (from `list_examples`) or a source such as `TFRecordSource`.
        layout: a `Layout` or layout name (None for a source).
        batch_size: samples per batch.
        crop_size: `(height, width)` of every sample.
        seed: non-negative integer; the whole stream is a function of it.
        augment: random scale / crop / flip (False: pad + centre crop to `crop_size`).
        shuffle: a new permutation of the examples every epoch (False: file order).
        start_step: the first batch index (to resume training).
        num_steps: number of batches; required.
        scale_range, flip, pad_value: passed to `augment`.
        workers, use_multiprocessing, max_queue_size: passed to `keras.utils.PyDataset`.
            Pillow releases the GIL while it decodes and resizes, so worker threads
            (`workers=N, use_multiprocessing=False`) can load in parallel when cores are free.
            On JAX prefer threads: Keras' process pool uses fork(), which JAX warns can
            deadlock.

    Example:

    ```python
    ds = SegmentationPyDataset(train, "camvid", 8, (321, 321), seed=0, num_steps=100)
    images, masks = ds[0]
    ```
    """

    def __init__(self, examples, layout, batch_size, crop_size, seed=0, augment=True, shuffle=True,
                 start_step=0, num_steps=None, scale_range=(0.5, 2.0), flip=True,
                 pad_value=MEAN_PIXEL, workers=1, use_multiprocessing=False,
                 max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        if num_steps is None:
            raise ValueError("num_steps is required: the number of batches this dataset yields "
                             "(e.g. the total training steps, or steps_per_epoch(len(examples), "
                             "batch_size) for one pass).")
        if int(num_steps) < 1 or int(start_step) < 0:
            raise ValueError(f"num_steps must be >= 1 and start_step >= 0; received {num_steps} "
                             f"and {start_step}.")
        self.source = as_source(examples, None if layout is None else get_layout(layout))
        if len(self.source) == 0:
            raise ValueError("The example list is empty; check list_examples(...) and the split.")
        self.batch_size = int(batch_size)
        self.crop_size = check_size(crop_size)
        self.seed = seed
        self.augment = augment
        self.shuffle = shuffle
        self.start_step = int(start_step)
        self.num_steps = int(num_steps)
        self.scale_range = scale_range
        self.flip = flip
        self.pad_value = pad_value
        self.passes = 0

    def on_epoch_end(self):
        self.passes += 1

    def __len__(self):
        return self.num_steps

    def __getitem__(self, index):
        if not 0 <= index < self.num_steps:
            raise IndexError(f"Batch {index} is out of range for a dataset of {self.num_steps} "
                             "steps.")
        first = self.start_step + self.passes * self.num_steps
        return load_batch(self.source, None, first + index, self.batch_size,
                          self.crop_size, self.seed, augment=self.augment, shuffle=self.shuffle,
                          scale_range=self.scale_range, flip=self.flip, pad_value=self.pad_value)
