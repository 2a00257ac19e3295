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

import atexit
import collections
import contextlib
import threading
import time

from deeplab_keras.data.augment import MEAN_PIXEL
from deeplab_keras.data.augment import check_size
from deeplab_keras.data.layouts import get_layout
from deeplab_keras.data.stream import as_source
from deeplab_keras.data.stream import iterate_eval
from deeplab_keras.data.stream import load_batch


class _Closing(RuntimeError):
    """The interpreter is exiting: the pipeline stops loading."""


_calls = {"closing": False, "in_flight": 0, "registered": False}
_calls_lock = threading.Lock()
_recent_errors = collections.deque(maxlen=16)  # what the pipeline's Python code raised


def python_error(tf_error):
    """The Python exception (e.g. our ValueError naming a bad mask) that a TensorFlow error
    raised by this module's pipelines wraps, or None.

    Example:

    ```python
    try:
        next(iter(make_tf_dataset(examples, layout, 2, (64, 64))))
    except tf.errors.OpError as e:
        raise (python_error(e) or e)
    ```
    """
    text = getattr(tf_error, "message", None) or str(tf_error)
    for error in reversed(_recent_errors):
        if str(error) and str(error) in text:
            return error
    return None


def _finish_in_flight_loads(timeout=30.0, quiet=0.3):
    """At exit, stop new loads and wait until none is running.

    A live iterator's worker threads call back into Python (`tf.numpy_function`); if one is
    running when the interpreter finalizes, it waits for the GIL forever and the process hangs.
    """
    _calls["closing"] = True
    deadline, quiet_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = time.monotonic()
        if _calls["in_flight"] == 0:
            quiet_since = quiet_since or now
            if now - quiet_since >= quiet:
                return
        else:
            quiet_since = None
        time.sleep(0.01)


def _register_exit_wait():
    with _calls_lock:
        if not _calls["registered"]:
            atexit.register(_finish_in_flight_loads)
            _calls["registered"] = True


@contextlib.contextmanager
def _in_flight():
    """Counts one Python call from a tf.data thread; raises `_Closing` once the process exits.
    An exception it raises is kept for `python_error`."""
    with _calls_lock:
        if _calls["closing"]:
            raise _Closing("the process is exiting")
        _calls["in_flight"] += 1
    try:
        yield
    except Exception as error:
        if not isinstance(error, StopIteration):
            _recent_errors.append(error)
        raise
    finally:
        with _calls_lock:
            _calls["in_flight"] -= 1


def _tracked(load):
    """`load` that counts itself in flight and refuses to start once the process exits."""
    _register_exit_wait()

    def run(*args):
        with _in_flight():
            return load(*args)

    return run


def _tracked_generator(make):
    """A generator function for `from_generator` whose steps are counted like `_tracked`."""
    _register_exit_wait()

    def generate():
        iterator = iter(make())
        while True:
            try:
                with _in_flight():
                    item = next(iterator)
            except (_Closing, StopIteration):
                return
            yield item

    return generate


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

    # A finite dataset iterated again (`fit(epochs=3)` without steps_per_epoch) draws new
    # batches: the k-th load of index i loads batch i + k * num_steps of the stream.
    loads, loads_lock = {}, threading.Lock()

    def load(batch_index):
        batch_index = int(batch_index)
        if num_steps is not None:
            with loads_lock:
                passes = loads.get(batch_index, 0)
                loads[batch_index] = passes + 1
            batch_index += passes * int(num_steps)
        return load_batch(source, None, batch_index, batch_size, (h, w), seed,
                          augment=augment, shuffle=shuffle, scale_range=scale_range, flip=flip,
                          pad_value=pad_value)

    def tf_load(batch_index):
        images, masks = tf.numpy_function(_tracked(load), [batch_index],
                                          [tf.float32, tf.int32], stateful=False)
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
        num_steps: number of batches, or None for an endless stream. Iterating the dataset
            again (Keras `fit(epochs=E)` without `steps_per_epoch`) continues the stream
            with the next `num_steps` batches rather than repeating the same ones.

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

    @_tracked_generator
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
