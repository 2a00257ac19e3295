"""The training stream and the evaluation stream as `tf.data` pipelines (TensorFlow lazily).

`make_tf_dataset` maps `tf.data.Dataset.range(start_step, ...)` with `tf.numpy_function` over
`load_batch`, in parallel (`AUTOTUNE`) but `deterministic=True`, so its batches are exactly the
batches of `SegmentationPyDataset` and of `load_batch`.

Example:

```python
from deeplab_keras import data
layout = data.get_layout("camvid")
train = data.list_examples(layout, "/data/camvid", "train")
ds = data.make_tf_dataset(train, layout, batch_size=8, crop_size=(321, 321), seed=0,
                          num_steps=10_000)
model.fit(ds, epochs=1)
for image, mask in data.make_eval_tf_dataset(data.list_examples(layout, "/data/camvid", "val"),
                                             layout):
    ...  # [1, H, W, 3] float32, [1, H, W] int32, every val image once, in order
```
"""

from deeplab_keras.data.augment import MEAN_PIXEL
from deeplab_keras.data.augment import check_size
from deeplab_keras.data.layouts import get_layout
from deeplab_keras.data.stream import as_source
from deeplab_keras.data.stream import iterate_eval
from deeplab_keras.data.stream import load_batch


def _batches(source, batch_size, crop_size, seed, augment, shuffle, start_step, num_steps,
             scale_range, flip, pad_value):
    import tensorflow as tf

    h, w = check_size(crop_size)
    batch_size = int(batch_size)
    if len(source) == 0:
        raise ValueError("The example list is empty; check list_examples(...) and the split.")
    if int(start_step) < 0 or (num_steps is not None and int(num_steps) < 1):
        raise ValueError(f"start_step must be >= 0 and num_steps >= 1 (or None for an endless "
                         f"stream); received {start_step} and {num_steps}.")
    if num_steps is None:
        steps = tf.data.Dataset.counter(int(start_step))
    else:
        steps = tf.data.Dataset.range(int(start_step), int(start_step) + int(num_steps))

    def load(batch_index):
        return load_batch(source, None, int(batch_index), batch_size, (h, w), seed,
                          augment=augment, shuffle=shuffle, scale_range=scale_range, flip=flip,
                          pad_value=pad_value)

    def tf_load(batch_index):
        images, masks = tf.numpy_function(load, [batch_index], [tf.float32, tf.int32],
                                          stateful=False)
        images.set_shape([batch_size, h, w, 3])
        masks.set_shape([batch_size, h, w])
        return images, masks

    dataset = steps.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_tf_dataset(examples, layout, batch_size, crop_size, seed=0, augment=True, shuffle=True,
                    start_step=0, num_steps=None, scale_range=(0.5, 2.0), flip=True,
                    pad_value=MEAN_PIXEL):
    """A `tf.data.Dataset` of batches `start_step, start_step + 1, ...` of the sample stream.

    Args:
        examples: list of `Example` or a source (e.g. `TFRecordSource`).
        layout: `Layout` or name (None for a source).
        batch_size, crop_size, seed, augment, shuffle, scale_range, flip, pad_value: as in
            `load_batch` / `SegmentationPyDataset`.
        start_step: first batch index (resume point).
        num_steps: number of batches, or None for an endless stream.

    Returns:
        Dataset of `(images float32 [B, h, w, 3] in 0..255, masks int32 [B, h, w])`.

    Example:

    ```python
    ds = make_tf_dataset(train, "camvid", 8, (321, 321), seed=0, start_step=6000,
                         num_steps=4000)
    ```
    """
    source = as_source(examples, None if layout is None else get_layout(layout))
    return _batches(source, batch_size, crop_size, seed, augment, shuffle, start_step, num_steps,
                    scale_range, flip, pad_value)


def make_eval_tf_dataset(examples, layout, with_names=False):
    """Every example once, in order, full size, batch 1, no augmentation.

    Returns:
        Dataset of `(image float32 [1, H, W, 3] in 0..255, mask int32 [1, H, W])`, or
        `(name string [1], image, mask)` with `with_names=True`. Image sizes may differ.
        Every example must have a mask (use `iterate_eval` for unlabelled images).

    Example:

    ```python
    for image, mask in make_eval_tf_dataset(val, "camvid"):
        logits = model(image, training=False)
    ```
    """
    import numpy as np
    import tensorflow as tf

    source = as_source(examples, None if layout is None else get_layout(layout))

    def generate():
        for name, image, mask in iterate_eval(source, None):
            if mask is None:
                raise ValueError(f"Example {name} has no mask; evaluation needs masks. Use "
                                 "iterate_eval for unlabelled images.")
            yield (np.array([name]), image[None].astype(np.float32),
                   mask[None].astype(np.int32))

    signature = (tf.TensorSpec([1], tf.string), tf.TensorSpec([1, None, None, 3], tf.float32),
                 tf.TensorSpec([1, None, None], tf.int32))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    if not with_names:
        dataset = dataset.map(lambda name, image, mask: (image, mask))
    return dataset.prefetch(2)
