"""Writing a split to TFRecord shards and training from them (TensorFlow imported lazily).

Each record is a `tf.train.Example` with

| key                 | value                                                      |
| ------------------- | ---------------------------------------------------------- |
| `image/encoded`     | PNG bytes of the decoded RGB image (EXIF already applied)  |
| `mask/encoded`      | PNG bytes of the **mapped** uint8 mask (class ids, ignore) |
| `image/height`, `image/width` | int64                                            |
| `image/name`        | the example name (image file stem)                         |
| `layout/name`, `layout/num_classes`, `layout/ignore_label` | the layout used         |

PNG is lossless, so reading a record gives exactly `load_example`'s arrays. Records are not
compressed. Shards `{prefix}-00000-of-0000N.tfrecord` hold consecutive runs of the example list,
so reading the shards in name order gives the examples in their original order. Each shard is
written to a hidden temporary file in the same directory, fsynced and renamed (`os.replace`): a
killed writer never leaves a half-written shard under a real name, and readers skip temporaries.

Training from TFRecords (`make_tf_dataset_from_tfrecords`) uses the same deterministic sample
stream as `make_tf_dataset`: `TFRecordSource` indexes the byte offset of every record once (a
scan of the record headers, no decoding), so record `i` can be read directly and the stream's
sample `g -> record order[g % n]` holds exactly as for files. The same examples therefore give
the same batches from files and from TFRecords.

Example:

```python
from deeplab_keras import data
layout = data.get_layout("camvid")
train = data.list_examples(layout, "/data/camvid", "train")
data.write_tfrecords(train, layout, "/data/camvid_tfrecords", num_shards=4, prefix="train")
ds = data.make_tf_dataset_from_tfrecords("/data/camvid_tfrecords/train-*", batch_size=8,
                                         crop_size=(321, 321), seed=0, num_steps=1000)
for record in data.read_tfrecords("/data/camvid_tfrecords/train-*"):
    record["image"], record["mask"], record["name"]
```
"""

import glob as glob_lib
import io
import math
import os
import struct

import numpy as np
from PIL import Image

from deeplab_keras import files
from deeplab_keras.data.augment import MEAN_PIXEL
from deeplab_keras.data.decode import decode_image_bytes
from deeplab_keras.data.decode import load_example
from deeplab_keras.data.layouts import get_layout


def _encode_png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _serialize(tf, name, image, mask, layout):
    def bytes_feature(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def int_feature(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    features = {
        "image/encoded": bytes_feature(_encode_png(image)),
        "image/format": bytes_feature(b"png"),
        "image/height": int_feature(image.shape[0]),
        "image/width": int_feature(image.shape[1]),
        "image/name": bytes_feature(name.encode("utf-8")),
        "mask/encoded": bytes_feature(_encode_png(mask)),
        "mask/format": bytes_feature(b"png"),
        "layout/name": bytes_feature(layout.name.encode("utf-8")),
        "layout/num_classes": int_feature(layout.num_classes),
        "layout/ignore_label": int_feature(layout.ignore_label),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _is_url(path):
    return "://" in str(path)


def _shard_glob(out_dir, prefix):
    return os.path.join(out_dir, f"{prefix}-*-of-*.tfrecord")


def write_tfrecords(examples, layout, out_dir, num_shards=None, prefix="train", overwrite=False,
                    verbose=1):
    """Decodes, maps and writes examples to `{out_dir}/{prefix}-XXXXX-of-YYYYY.tfrecord`.

    Args:
        examples: list of `Example`, each with a mask.
        layout: `Layout` or name; masks are stored after its label mapping.
        out_dir: output folder (created if missing; local path or a tf.io.gfile URL).
        num_shards: number of shards (default: one per 1000 examples, at least 1).
        prefix: shard name prefix, e.g. the split name.
        overwrite: replace existing shards with this prefix (stale shards of another shard
            count are deleted once the new ones are written). False: existing shards raise.
        verbose: 1 shows a progress bar.

    Returns:
        The list of shard paths, in order.

    Example:

    ```python
    paths = write_tfrecords(train, "camvid", "/tmp/records", num_shards=2, prefix="train")
    ```
    """
    import keras
    import tensorflow as tf

    layout = get_layout(layout)
    examples = list(examples)
    if not examples:
        raise ValueError("No examples to write; check list_examples(...) and the split.")
    unlabelled = [ex.image_path for ex in examples if ex.mask_path is None]
    if unlabelled:
        raise ValueError(f"{len(unlabelled)} examples have no mask (first: {unlabelled[0]}); "
                         "TFRecords for training need masks.")
    num_shards = max(1, math.ceil(len(examples) / 1000)) if num_shards is None else int(num_shards)
    if not 1 <= num_shards <= len(examples):
        raise ValueError(f"num_shards must be in 1..{len(examples)} (the number of examples); "
                         f"received {num_shards}.")
    out_dir = os.fspath(out_dir)
    tf.io.gfile.makedirs(out_dir)
    existing = set(tf.io.gfile.glob(_shard_glob(out_dir, prefix)))
    if existing and not overwrite:
        raise FileExistsError(f"{out_dir} already holds {len(existing)} shard(s) with prefix "
                              f"'{prefix}' (e.g. {sorted(existing)[0]}); pass overwrite=True or "
                              "choose another prefix/out_dir.")
    paths = [os.path.join(out_dir, f"{prefix}-{i:05d}-of-{num_shards:05d}.tfrecord")
             for i in range(num_shards)]
    bounds = [round(i * len(examples) / num_shards) for i in range(num_shards + 1)]
    progbar = keras.utils.Progbar(len(examples), unit_name="image") if verbose else None
    for shard, path in enumerate(paths):
        def write(temp, shard=shard):
            with tf.io.TFRecordWriter(temp) as writer:
                for example in examples[bounds[shard]:bounds[shard + 1]]:
                    image, mask = load_example(example, layout)
                    writer.write(_serialize(tf, example.name, image, mask, layout))
                    if progbar is not None:
                        progbar.add(1)

        _write_atomically(tf, path, write)
    for stale in sorted(existing - set(paths)):
        tf.io.gfile.remove(stale)
    return paths


def _write_atomically(tf, path, write):
    """`write(temp)` then rename to `path`; a hidden temp name, so a "train-*" pattern never
    matches a shard that is still being written (or that a killed writer left behind)."""
    if not _is_url(path):
        with files.atomic_path(path) as temp:
            write(temp)
        return
    temp = f"{path.rsplit('/', 1)[0]}/.{path.rsplit('/', 1)[1]}.tmp-{os.getpid()}"
    try:
        write(temp)
        tf.io.gfile.rename(temp, path, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(temp):
            tf.io.gfile.remove(temp)
        raise


def match_files(file_pattern):
    """Sorted files matching a glob pattern (or a list of patterns); error if none match.

    Example:

    ```python
    match_files("/tmp/records/train-*")
    ```
    """
    patterns = [file_pattern] if isinstance(file_pattern, (str, os.PathLike)) else file_pattern
    files = []
    for pattern in patterns:
        pattern = os.fspath(pattern)
        if _is_url(pattern):
            import tensorflow as tf

            matched = tf.io.gfile.glob(pattern)
        else:
            matched = glob_lib.glob(pattern)
        matched = [m for m in matched if ".tmp-" not in os.path.basename(m)]
        if not matched:
            raise FileNotFoundError(f"No TFRecord files match {pattern}; write them with "
                                    "write_tfrecords(examples, layout, out_dir, prefix=...).")
        files.extend(sorted(matched))
    return files


def _feature_spec(tf):
    return {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/name": tf.io.FixedLenFeature([], tf.string),
        "mask/encoded": tf.io.FixedLenFeature([], tf.string),
    }


def read_tfrecords(file_pattern):
    """Reads shards written by `write_tfrecords`, in file-name order then record order.

    Returns:
        A `tf.data.Dataset` of `dict(image=uint8 [H, W, 3], mask=uint8 [H, W], name=string)`.

    Example:

    ```python
    for record in read_tfrecords("/tmp/records/train-*").take(1):
        print(record["name"].numpy(), record["image"].shape)
    ```
    """
    import tensorflow as tf

    spec = _feature_spec(tf)

    def parse(record):
        features = tf.io.parse_single_example(record, spec)
        image = tf.io.decode_png(features["image/encoded"], channels=3)
        mask = tf.io.decode_png(features["mask/encoded"], channels=1)[..., 0]
        return {"image": image, "mask": mask, "name": features["image/name"]}

    dataset = tf.data.TFRecordDataset(match_files(file_pattern))
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _open(path):
    if _is_url(path):
        import tensorflow as tf

        return tf.io.gfile.GFile(path, "rb")
    return open(path, "rb")


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def _masked_crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def index_tfrecord(path):
    """Byte offsets and lengths of every record of one uncompressed TFRecord file.

    Reads only the 12-byte record headers (and checks their CRC), so it is fast.

    Example:

    ```python
    offsets, lengths = index_tfrecord("/tmp/records/train-00000-of-00002.tfrecord")
    ```
    """
    offsets, lengths = [], []
    with _open(path) as f:
        f.seek(0, 2)
        size = f.tell()
        position = 0
        while position < size:
            f.seek(position)
            header = f.read(12)
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header at byte {position} (file size "
                                 f"{size}); the file is incomplete. Rewrite it with "
                                 "write_tfrecords.")
            length, length_crc = struct.unpack("<QI", header)
            if _masked_crc32c(header[:8]) != length_crc:
                raise ValueError(f"{path}: corrupt record header at byte {position} (length CRC "
                                 "mismatch); the file is damaged or compressed (only "
                                 "uncompressed TFRecords are supported).")
            end = position + 12 + length + 4
            if end > size:
                raise ValueError(f"{path}: record at byte {position} claims {length} bytes but "
                                 f"the file ends at {size}; the file is truncated.")
            offsets.append(position + 12)
            lengths.append(length)
            position = end
    return np.array(offsets, np.int64), np.array(lengths, np.int64)


class TFRecordSource:
    """Random access to the records of `write_tfrecords` shards, usable by the sample stream.

    `load(i)` returns `(image uint8 [H, W, 3], mask uint8 [H, W])` of record `i` (records
    numbered across the sorted shards); `ignore_label` and `num_classes` come from the records.

    Example:

    ```python
    source = TFRecordSource("/tmp/records/train-*")
    images, masks = load_batch(source, None, 0, 8, (321, 321), seed=0)
    ```
    """

    def __init__(self, file_pattern):
        self.files = match_files(file_pattern)
        self._file_of, self._offsets, self._lengths = [], [], []
        for file_index, path in enumerate(self.files):
            offsets, lengths = index_tfrecord(path)
            self._file_of.append(np.full(len(offsets), file_index, np.int32))
            self._offsets.append(offsets)
            self._lengths.append(lengths)
        self._file_of = np.concatenate(self._file_of)
        self._offsets = np.concatenate(self._offsets)
        self._lengths = np.concatenate(self._lengths)
        if len(self._offsets) == 0:
            raise ValueError(f"The TFRecord files {self.files} hold no records.")
        first = self._parse(0)
        self.layout_name = first["layout/name"]
        self.num_classes = first["layout/num_classes"]
        self.ignore_label = first["layout/ignore_label"]

    def __len__(self):
        return len(self._offsets)

    def _read(self, index):
        path = self.files[self._file_of[index]]
        with _open(path) as f:
            f.seek(int(self._offsets[index]))
            data = f.read(int(self._lengths[index]))
        if len(data) != self._lengths[index]:
            raise ValueError(f"{path}: record {index} is truncated.")
        return path, data

    def _parse(self, index):
        import tensorflow as tf

        path, data = self._read(index)
        try:
            feature = tf.train.Example.FromString(data).features.feature
        except Exception as e:
            raise ValueError(f"{path}: record {index} is not a tf.train.Example ({e}).") from e

        def first(key, kind):
            if key not in feature:
                raise ValueError(f"{path}: record {index} has no '{key}'; was it written by "
                                 "write_tfrecords?")
            values = getattr(feature[key], kind).value
            return values[0]

        return {
            "path": path,
            "image/encoded": first("image/encoded", "bytes_list"),
            "mask/encoded": first("mask/encoded", "bytes_list"),
            "image/name": first("image/name", "bytes_list").decode("utf-8"),
            "layout/name": first("layout/name", "bytes_list").decode("utf-8"),
            "layout/num_classes": int(first("layout/num_classes", "int64_list")),
            "layout/ignore_label": int(first("layout/ignore_label", "int64_list")),
        }

    def name(self, index):
        return self._parse(index)["image/name"]

    def load(self, index):
        record = self._parse(index)
        where = f"{record['path']} (record {index}, {record['image/name']})"
        image = decode_image_bytes(record["image/encoded"], where)
        mask = _decode_mask_png(record["mask/encoded"], where)
        if image.shape[:2] != mask.shape:
            raise ValueError(f"{where}: image {image.shape[:2]} and mask {mask.shape} differ in "
                             "size.")
        return image, mask


def _decode_mask_png(data, where):
    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)) as img:
            img.load()
            if img.mode != "L":
                raise ValueError(f"mode {img.mode}, expected L")
            return np.array(img, np.uint8)
    except Exception as e:
        raise ValueError(f"{where}: cannot decode the stored mask ({e}).") from e


def make_tf_dataset_from_tfrecords(file_pattern, batch_size, crop_size, seed=0, augment=True,
                                   shuffle=True, start_step=0, num_steps=None,
                                   scale_range=(0.5, 2.0), flip=True,
                                   pad_value=MEAN_PIXEL):
    """`make_tf_dataset` over TFRecord shards: same stream, same augmentation, same batches.

    Record order is fixed (sorted shard names, then record order), and sample `g` is record
    `order[g % n]` exactly as for an example list; see the module docstring.

    Example:

    ```python
    ds = make_tf_dataset_from_tfrecords("/tmp/records/train-*", 8, (321, 321), seed=0,
                                        num_steps=1000)
    ```
    """
    from deeplab_keras.data.tf_dataset import make_tf_dataset

    return make_tf_dataset(TFRecordSource(file_pattern), None, batch_size, crop_size, seed,
                           augment=augment, shuffle=shuffle, start_step=start_step,
                           num_steps=num_steps, scale_range=scale_range, flip=flip,
                           pad_value=pad_value)
