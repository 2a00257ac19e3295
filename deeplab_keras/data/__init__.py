"""Segmentation data: dataset layouts, decoding, augmentation and input pipelines.

* `classes`: every dataset's class names and colours (`palette`, `colorize`).
* `layouts`: `Layout`, `get_layout(name)`, `folder_layout(...)`, `list_examples(...)`.
* `pairs`: where each layout's image/mask pairs live on disk (`Example`).
* `decode`: `load_image`, `load_mask`, `load_example` (Pillow, clear errors).
* `rgb`: `as_rgb_array`, the rule for in-memory images (PIL, uint8, uint16, float).
* `statistics`: `scan_examples` (checks every pair before training), class pixel counts.
* `augment`: DeepLab random scale / pad / crop / flip in numpy.
* `stream`: the deterministic, resumable sample stream (`load_batch`, `iterate_eval`).
* `pydataset`: `SegmentationPyDataset` (any Keras backend, no TensorFlow).
* `tf_dataset`, `tfrecord`: tf.data pipelines and TFRecord shards (TensorFlow imported only
  when these functions are called; importing `deeplab_keras.data` never imports it).

Submodules load on first use, so `from deeplab_keras.data import layouts` needs no Keras.

Example:

```python
from deeplab_keras import data
layout = data.get_layout("camvid")
train = data.list_examples(layout, "/data/camvid", "train")
ds = data.SegmentationPyDataset(train, layout, batch_size=8, crop_size=(321, 321), seed=0,
                                num_steps=1000)
images, masks = ds[0]  # float32 [8, 321, 321, 3] in 0..255, int32 [8, 321, 321]
```
"""

from deeplab_keras import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submodules=("augment", "classes", "decode", "layouts", "pairs", "pydataset", "rgb",
                "statistics", "stream", "tf_dataset", "tfrecord"),
    names={
        "MEAN_PIXEL": "augment",
        "augment": "augment",
        "center_pad_or_crop": "augment",
        "pad_to_size": "augment",
        "resize_for_eval": "augment",
        "resize_pair": "augment",
        "load_example": "decode",
        "load_image": "decode",
        "load_mask": "decode",
        "IGNORE_LABEL": "layouts",
        "Layout": "layouts",
        "default_label_table": "layouts",
        "folder_layout": "layouts",
        "get_layout": "layouts",
        "list_examples": "layouts",
        "list_layouts": "layouts",
        "Example": "pairs",
        "SegmentationPyDataset": "pydataset",
        "as_rgb_array": "rgb",
        "class_pixel_counts": "statistics",
        "median_frequency_weights": "statistics",
        "scan_examples": "statistics",
        "ExampleSource": "stream",
        "epoch_order": "stream",
        "iterate_eval": "stream",
        "load_batch": "stream",
        "load_sample": "stream",
        "sample_example_index": "stream",
        "sample_rng": "stream",
        "steps_per_epoch": "stream",
        "make_eval_tf_dataset": "tf_dataset",
        "make_tf_dataset": "tf_dataset",
        "TFRecordSource": "tfrecord",
        "make_tf_dataset_from_tfrecords": "tfrecord",
        "read_tfrecords": "tfrecord",
        "write_tfrecords": "tfrecord",
    })

# `data.augment` is the function (as before this package loaded lazily), not its module: once
# a submodule is imported Python binds it on the package, so the function is bound first.
from deeplab_keras.data.augment import augment  # noqa: E402, F401
