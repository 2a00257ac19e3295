"""Segmentation data: dataset layouts, decoding, augmentation and input pipelines.

* `classes`: every dataset's class names and colours (`palette`, `colorize`).
* `layouts`: `Layout`, `get_layout(name)`, `folder_layout(...)`, `list_examples(...)`.
* `pairs`: where each layout's image/mask pairs live on disk (`Example`).
* `decode`: `load_image`, `load_mask`, `load_example` (Pillow, clear errors).
* `augment`: DeepLab random scale / pad / crop / flip in numpy.
* `stream`: the deterministic, resumable sample stream (`load_batch`, `iterate_eval`).
* `pydataset`: `SegmentationPyDataset` (any Keras backend, no TensorFlow).
* `tf_dataset`, `tfrecord`: tf.data pipelines and TFRecord shards (TensorFlow imported only
  when these functions are called; importing `deeplab_keras.data` never imports it).

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

from deeplab_keras.data import classes
from deeplab_keras.data.augment import MEAN_PIXEL
from deeplab_keras.data.augment import augment
from deeplab_keras.data.augment import center_pad_or_crop
from deeplab_keras.data.augment import pad_to_size
from deeplab_keras.data.augment import resize_for_eval
from deeplab_keras.data.augment import resize_pair
from deeplab_keras.data.decode import load_example
from deeplab_keras.data.decode import load_image
from deeplab_keras.data.decode import load_mask
from deeplab_keras.data.layouts import IGNORE_LABEL
from deeplab_keras.data.layouts import Layout
from deeplab_keras.data.layouts import default_label_table
from deeplab_keras.data.layouts import folder_layout
from deeplab_keras.data.layouts import get_layout
from deeplab_keras.data.layouts import list_examples
from deeplab_keras.data.layouts import list_layouts
from deeplab_keras.data.pairs import Example
from deeplab_keras.data.pydataset import SegmentationPyDataset
from deeplab_keras.data.statistics import class_pixel_counts
from deeplab_keras.data.statistics import median_frequency_weights
from deeplab_keras.data.stream import ExampleSource
from deeplab_keras.data.stream import epoch_order
from deeplab_keras.data.stream import iterate_eval
from deeplab_keras.data.stream import load_batch
from deeplab_keras.data.stream import load_sample
from deeplab_keras.data.stream import sample_example_index
from deeplab_keras.data.stream import sample_rng
from deeplab_keras.data.stream import steps_per_epoch
from deeplab_keras.data.tf_dataset import make_eval_tf_dataset
from deeplab_keras.data.tf_dataset import make_tf_dataset
from deeplab_keras.data.tfrecord import TFRecordSource
from deeplab_keras.data.tfrecord import make_tf_dataset_from_tfrecords
from deeplab_keras.data.tfrecord import read_tfrecords
from deeplab_keras.data.tfrecord import write_tfrecords

__all__ = [
    "IGNORE_LABEL", "MEAN_PIXEL", "Example", "ExampleSource", "Layout", "SegmentationPyDataset",
    "classes",
    "TFRecordSource", "augment", "center_pad_or_crop", "class_pixel_counts",
    "default_label_table", "epoch_order",
    "folder_layout", "get_layout", "iterate_eval", "list_examples", "list_layouts",
    "load_batch", "load_example", "load_image", "load_mask", "load_sample",
    "make_eval_tf_dataset", "make_tf_dataset", "make_tf_dataset_from_tfrecords",
    "median_frequency_weights", "pad_to_size",
    "read_tfrecords", "resize_for_eval", "resize_pair", "sample_example_index", "sample_rng",
    "steps_per_epoch", "write_tfrecords",
]
