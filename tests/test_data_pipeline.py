"""The sample stream, SegmentationPyDataset, tf.data pipelines and TFRecords on tiny files."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from PIL import Image

from deeplab_keras import data

pytestmark = pytest.mark.tf_free_host

CROP = (8, 10)


@pytest.fixture()
def dataset(tmp_path):
    """7 image/mask pairs of different sizes in the folder layout, 3 classes + 255."""
    root = str(tmp_path / "pets")
    os.makedirs(os.path.join(root, "images", "train"))
    os.makedirs(os.path.join(root, "masks", "train"))
    rng = np.random.default_rng(0)
    for i in range(7):
        height, width = 6 + i, 9 + 2 * i
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        mask = rng.choice(np.array([0, 1, 2, 255], np.uint8), (height, width))
        Image.fromarray(image).save(os.path.join(root, "images", "train", f"im{i}.png"))
        Image.fromarray(mask).save(os.path.join(root, "masks", "train", f"im{i}.png"))
    layout = data.folder_layout(3)
    return data.list_examples(layout, root, "train"), layout


def _assert_batches_equal(actual, expected):
    assert len(actual) == len(expected)
    for (a_images, a_masks), (e_images, e_masks) in zip(actual, expected):
        np.testing.assert_array_equal(np.asarray(a_images), e_images)
        np.testing.assert_array_equal(np.asarray(a_masks), e_masks)


def test_epochs_visit_every_example_once():
    n = 7
    for seed in (0, 3):
        orders = [data.epoch_order(n, seed, epoch) for epoch in range(3)]
        for order in orders:
            assert sorted(order.tolist()) == list(range(n))
        assert not np.array_equal(orders[0], orders[1])
        seen = [data.sample_example_index(n, seed, g) for g in range(2 * n)]
        assert sorted(seen[:n]) == list(range(n)) and sorted(seen[n:]) == list(range(n))
    assert data.epoch_order(n, 0, 5, shuffle=False).tolist() == list(range(n))
    np.testing.assert_array_equal(data.sample_rng(n, 4, 9).integers(0, 1 << 30, 4),
                                  np.random.default_rng([4, 1, 2]).integers(0, 1 << 30, 4))
    with pytest.raises(ValueError, match="seed"):
        data.epoch_order(n, -1, 0)
    assert data.steps_per_epoch(367, 8) == 46


def test_load_batch_shapes_values_and_determinism(dataset):
    examples, layout = dataset
    images, masks = data.load_batch(examples, layout, 3, 4, CROP, seed=5)
    assert images.shape == (4, 8, 10, 3) and images.dtype == np.float32
    assert masks.shape == (4, 8, 10) and masks.dtype == np.int32
    assert 0 <= images.min() and images.max() <= 255
    assert set(np.unique(masks).tolist()) <= {0, 1, 2, 255}
    again = data.load_batch(examples, layout, 3, 4, CROP, seed=5)
    np.testing.assert_array_equal(images, again[0])
    np.testing.assert_array_equal(masks, again[1])
    other = data.load_batch(examples, layout, 3, 4, CROP, seed=6)
    assert not np.array_equal(images, other[0])
    # Batch b = samples b*B .. b*B+B-1, whatever the batch size.
    singles = [data.load_batch(examples, layout, 12 + i, 1, CROP, seed=5) for i in range(4)]
    np.testing.assert_array_equal(images, np.concatenate([s[0] for s in singles]))
    # augment=False, shuffle=False: deterministic file order, centre crop.
    plain, plain_masks = data.load_batch(examples, layout, 0, 2, CROP, seed=0, augment=False,
                                         shuffle=False)
    first_image, first_mask = data.load_example(examples[0], layout)
    expected = data.center_pad_or_crop(first_image, first_mask, CROP)
    np.testing.assert_array_equal(plain[0], expected[0])
    np.testing.assert_array_equal(plain_masks[0], expected[1])


def test_pydataset_resumes_bit_identically(dataset):
    examples, layout = dataset
    full = data.SegmentationPyDataset(examples, layout, 3, CROP, seed=1, num_steps=6)
    resumed = data.SegmentationPyDataset(examples, layout, 3, CROP, seed=1, start_step=4,
                                         num_steps=2)
    assert len(full) == 6 and len(resumed) == 2
    _assert_batches_equal([resumed[0], resumed[1]], [full[4], full[5]])
    _assert_batches_equal([full[2]], [data.load_batch(examples, layout, 2, 3, CROP, seed=1)])
    with pytest.raises(IndexError):
        full[6]
    with pytest.raises(ValueError, match="num_steps is required"):
        data.SegmentationPyDataset(examples, layout, 3, CROP, seed=1)
    with pytest.raises(ValueError, match="empty"):
        data.SegmentationPyDataset([], layout, 3, CROP, seed=1, num_steps=1)


def test_pydataset_trains_with_worker_threads(dataset):
    examples, layout = dataset
    train = data.SegmentationPyDataset(examples, layout, 2, CROP, seed=0, num_steps=3,
                                       workers=2)
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(3, 1)])
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  ignore_class=255))
    history = model.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_pydataset_multiprocessing_matches(dataset):
    if keras.backend.backend() == "jax":
        pytest.skip("fork() after JAX has started threads can deadlock (JAX warns about it); "
                    "on JAX use worker threads: workers>1, use_multiprocessing=False")
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    examples, layout = dataset
    pooled = data.SegmentationPyDataset(examples, layout, 2, CROP, seed=2, num_steps=3,
                                        workers=2, use_multiprocessing=True)
    adapter = PyDatasetAdapter(pooled, shuffle=False)
    batches = list(adapter.get_numpy_iterator())
    adapter.on_epoch_end()
    _assert_batches_equal(batches, [data.load_batch(examples, layout, b, 2, CROP, seed=2)
                                    for b in range(3)])


def test_iterate_eval_every_image_once_in_order(dataset):
    examples, layout = dataset
    seen = list(data.iterate_eval(examples, layout))
    assert [name for name, _, _ in seen] == [f"im{i}" for i in range(7)]
    for (name, image, mask), example in zip(seen, examples):
        expected_image, expected_mask = data.load_example(example, layout)
        np.testing.assert_array_equal(image, expected_image)
        np.testing.assert_array_equal(mask, expected_mask)


def test_pydataset_needs_no_tensorflow(dataset):
    pytest.importorskip("jax")
    examples, _ = dataset
    root = os.path.dirname(os.path.dirname(os.path.dirname(examples[0].image_path)))
    script = textwrap.dedent(f"""
        import sys
        sys.modules["tensorflow"] = None  # any import of tensorflow now fails
        from deeplab_keras import data
        layout = data.folder_layout(3)
        examples = data.list_examples(layout, {root!r}, "train")
        images, masks = data.SegmentationPyDataset(examples, layout, 2, (8, 10), seed=0,
                                                   num_steps=1)[0]
        assert images.shape == (2, 8, 10, 3), images.shape
        assert len(list(data.iterate_eval(examples, layout))) == 7
        print("OK")
    """)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", script], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


@pytest.mark.requires_tf
def test_tf_dataset_equals_pydataset(dataset):
    examples, layout = dataset
    py = data.SegmentationPyDataset(examples, layout, 3, CROP, seed=9, start_step=2,
                                    num_steps=4)
    tf_ds = data.make_tf_dataset(examples, layout, 3, CROP, seed=9, start_step=2, num_steps=4)
    assert tuple(tf_ds.element_spec[0].shape) == (3, 8, 10, 3)
    _assert_batches_equal([(i.numpy(), m.numpy()) for i, m in tf_ds],
                          [py[i] for i in range(4)])
    endless = data.make_tf_dataset(examples, layout, 3, CROP, seed=9, start_step=4)
    _assert_batches_equal([(i.numpy(), m.numpy()) for i, m in endless.take(2)],
                          [py[2], py[3]])


@pytest.mark.requires_tf
def test_eval_tf_dataset(dataset):
    examples, layout = dataset
    seen = list(data.make_eval_tf_dataset(examples, layout, with_names=True))
    assert [n.numpy()[0].decode() for n, _, _ in seen] == [f"im{i}" for i in range(7)]
    for (_, image, mask), example in zip(seen, examples):
        expected_image, expected_mask = data.load_example(example, layout)
        assert image.shape == (1,) + expected_image.shape and image.dtype.name == "float32"
        np.testing.assert_array_equal(image.numpy()[0], expected_image)
        np.testing.assert_array_equal(mask.numpy()[0], expected_mask)
    assert len(list(data.make_eval_tf_dataset(examples, layout))) == 7


@pytest.mark.requires_tf
def test_tfrecords_round_trip_and_training_stream(dataset, tmp_path):
    examples, layout = dataset
    out_dir = str(tmp_path / "records")
    paths = data.write_tfrecords(examples, layout, out_dir, num_shards=3, prefix="train",
                                 verbose=0)
    assert [os.path.basename(p) for p in paths] == [
        f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert sorted(os.listdir(out_dir)) == sorted(os.path.basename(p) for p in paths)
    records = list(data.read_tfrecords(os.path.join(out_dir, "train-*")))
    assert [r["name"].numpy().decode() for r in records] == [e.name for e in examples]
    for record, example in zip(records, examples):
        image, mask = data.load_example(example, layout)
        assert record["image"].dtype.name == "uint8" and record["mask"].dtype.name == "uint8"
        np.testing.assert_array_equal(record["image"].numpy(), image)
        np.testing.assert_array_equal(record["mask"].numpy(), mask)
    # Training from the records gives the same batches as training from the files.
    from_records = data.make_tf_dataset_from_tfrecords(os.path.join(out_dir, "train-*"), 3,
                                                       CROP, seed=4, num_steps=3)
    from_files = data.make_tf_dataset(examples, layout, 3, CROP, seed=4, num_steps=3)
    _assert_batches_equal([(i.numpy(), m.numpy()) for i, m in from_records],
                          [(i.numpy(), m.numpy()) for i, m in from_files])
    source = data.TFRecordSource(os.path.join(out_dir, "train-*"))
    assert len(source) == 7 and source.ignore_label == 255 and source.num_classes == 3
    # Existing shards are not overwritten by accident; overwrite=True removes stale shards.
    with pytest.raises(FileExistsError, match="overwrite=True"):
        data.write_tfrecords(examples, layout, out_dir, num_shards=2, verbose=0)
    data.write_tfrecords(examples, layout, out_dir, num_shards=2, overwrite=True, verbose=0)
    assert sorted(os.listdir(out_dir)) == ["train-00000-of-00002.tfrecord",
                                           "train-00001-of-00002.tfrecord"]
    with pytest.raises(FileNotFoundError, match="No TFRecord files match"):
        data.read_tfrecords(os.path.join(out_dir, "val-*"))


@pytest.mark.requires_tf
def test_tfrecords_failures_leave_no_partial_shards(dataset, tmp_path):
    examples, layout = dataset
    with open(examples[5].image_path, "wb") as f:
        f.write(b"\x89PNG broken")
    out_dir = str(tmp_path / "records")
    with pytest.raises(ValueError, match="im5.png"):
        data.write_tfrecords(examples, layout, out_dir, num_shards=2, verbose=0)
    # Shard 0 (examples 0..3) was complete and published; shard 1 failed and left nothing.
    assert os.listdir(out_dir) == ["train-00000-of-00002.tfrecord"]
    # A temporary left by a killed writer is never read as a shard.
    with open(os.path.join(out_dir, ".train-00001-of-00002.tfrecord.tmp-99"), "wb") as f:
        f.write(b"partial")
    assert data.tfrecord.match_files(os.path.join(out_dir, "train-*")) == [
        os.path.join(out_dir, "train-00000-of-00002.tfrecord")]
    shard = os.path.join(out_dir, "train-00000-of-00002.tfrecord")
    assert len(data.TFRecordSource(shard)) == 4
    with open(shard, "rb") as f:
        payload = f.read()
    with open(shard, "wb") as f:
        f.write(payload[:len(payload) - 100])
    with pytest.raises(ValueError, match=r"train-00000-of-00002\.tfrecord.*truncated"):
        data.TFRecordSource(shard)
    with pytest.raises(ValueError, match="no mask"):
        data.write_tfrecords([data.Example(examples[0].image_path)], layout, out_dir,
                             verbose=0)
