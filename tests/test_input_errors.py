"""Inputs that used to fail unclearly, silently or wrongly (issue 14, findings 5, 7, 8, 10),
now each with a clear error or the right answer."""

import logging
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import data
from deeplab_keras import evaluation

pytestmark = pytest.mark.tf_free_host

TINY = dict(backbone="mobilenetv2", num_classes=3, backbone_kwargs=dict(alpha=0.35),
            aspp_filters=8, decoder_filters=8, low_level_filters=4)


@pytest.fixture(scope="module")
def tiny_model():
    return dk.models.DeepLabV3Plus(**TINY)


def test_model_predict_on_one_image_names_the_fix(tiny_model):
    """Keras' own error named a shape the user never passed."""
    with pytest.raises(ValueError, match=r"received shape \(16, 16, 3\).*image\[None\]"):
        tiny_model.predict(np.zeros((16, 16, 3), np.float32), verbose=0)
    with pytest.raises(ValueError, match="predict_on_batch.*deeplab_keras.segment"):
        tiny_model.predict_on_batch(np.zeros((16, 16, 3), np.float32))
    assert tiny_model.predict(np.zeros((1, 16, 16, 3)), verbose=0).shape == (1, 16, 16, 3)


def test_dense_crf_batch_mismatch_is_named():
    """Used to surface as a StridedSlice error."""
    crf = dk.layers.DenseCRF(iterations=1)
    with pytest.raises(ValueError, match="logits batch size 2 != image batch size 1"):
        crf([np.zeros((2, 6, 6, 3), np.float32), np.zeros((1, 6, 6, 3), np.float32)])


def test_broken_keras_files_say_what_is_wrong(tmp_path, tiny_model):
    """A truncated, renamed or non-zip .keras file gave "File not found" for a file that
    exists."""
    good = tmp_path / "good.keras"
    tiny_model.save(good)
    content = good.read_bytes()
    (tmp_path / "truncated.keras").write_bytes(content[: len(content) // 2])
    (tmp_path / "renamed.keras").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("readme.txt", "not a model")
    for name, message in (("truncated", "truncated"), ("renamed", "not a zip archive"),
                          ("other", "lacks \\['config.json', 'model.weights.h5'\\]")):
        path = str(tmp_path / f"{name}.keras")
        with pytest.raises(ValueError, match=f"{name}.keras.*{message}"):
            dk.load_model(path)
    assert dk.load_model(str(good)).count_params() == tiny_model.count_params()


def test_an_uncreatable_cache_folder_is_a_clear_error(tmp_path, monkeypatch):
    """A cache folder that cannot be written raised a raw PermissionError / OSError."""
    from deeplab_keras.weights import cache
    from deeplab_keras.weights import errors
    from deeplab_keras.weights import registry

    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("DEEPLAB_KERAS_CACHE", str(blocker / "cache"))
    with pytest.raises(errors.CacheNotWritableError, match="DEEPLAB_KERAS_CACHE"):
        cache.ensure_converted(registry.get_record("deeplab_resnet101_voc"), build=None)


def test_load_model_with_another_class_count_names_the_classes(caplog):
    with caplog.at_level(logging.WARNING, logger="deeplab_keras"):
        model = dk.load_model("deeplabv3plus_mobilenetv2_camvid", num_classes=4)
    assert model.class_names == ("class_0", "class_1", "class_2", "class_3")
    assert "named class_0..class_3" in caplog.text
    named = dk.load_model("deeplabv3plus_mobilenetv2_camvid", num_classes=2,
                          class_names=["road", "other"])
    assert named.class_names == ("road", "other")
    bundled = dk.load_model("deeplabv3plus_mobilenetv2_camvid")
    assert bundled.class_names[:2] == ("Sky", "Building") and bundled.palette.shape == (11, 3)


def _folder(root, names, masks):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name in names:
        image = Image.fromarray(np.full((6, 8, 3), 90, np.uint8))
        image.save(root / "images" / name, format="GIF" if name.endswith(".gif") else "JPEG")
    for stem in masks:
        Image.fromarray(np.zeros((6, 8), np.uint8)).save(root / "masks" / f"{stem}.png")
    return root


def test_every_skipped_file_is_reported_and_gif_jfif_are_read(tmp_path, caplog):
    """`.gif` and `.jfif` images and masks without images were dropped without a word."""
    root = _folder(tmp_path / "mine", ["a.jpg", "b.gif", "c.jfif"], ["a", "b", "c", "orphan"])
    (root / "images" / "notes.txt").write_text("not an image")
    layout = data.folder_layout(2)
    with caplog.at_level(logging.WARNING, logger="deeplab_keras.data"):
        examples = data.list_examples(layout, root)
    assert [os.path.basename(e.image_path) for e in examples] == ["a.jpg", "b.gif", "c.jfif"]
    assert "1 files that are not images (by extension)" in caplog.text and "notes.txt" in (
        caplog.text)
    assert "1 masks without an image" in caplog.text and "orphan.png" in caplog.text
    assert data.scan_examples(examples, layout, progress=False).sum() == 3 * 6 * 8


def test_the_scan_checks_sizes_from_the_image_header(tmp_path):
    root = _folder(tmp_path / "mine", ["a.jpg"], [])
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(root / "masks" / "a.png")
    layout = data.folder_layout(2)
    with pytest.raises(ValueError, match="a.jpg"):
        data.scan_examples(data.list_examples(layout, root), layout, progress=False)


def test_evaluate_progress_knows_its_total(tmp_path, capsys, tiny_model):
    """`evaluate(model, iterate_eval(...))` showed `1/Unknown`."""
    root = _folder(tmp_path / "mine", ["a.jpg", "b.jpg"], ["a", "b"])
    layout = data.folder_layout(3)
    result = evaluation.evaluate(tiny_model, data.iterate_eval(
        data.list_examples(layout, root), layout), num_classes=3)
    printed = capsys.readouterr().out
    assert result["num_images"] == 2 and "2/2" in printed and "Unknown" not in printed


def _batches_of(dataset, count):
    return [np.asarray(images) for images, _ in list(dataset)[:count]]


def test_a_finite_pydataset_draws_new_batches_each_epoch(tmp_path):
    """`fit(epochs=3)` over `num_steps=2` repeated the same two batches every epoch."""
    root = _folder(tmp_path / "mine", [f"{i}.jpg" for i in range(6)], [str(i) for i in range(6)])
    for i in range(6):  # distinct images, so different batches differ
        Image.fromarray(np.full((6, 8, 3), 20 * i, np.uint8)).save(root / "images" / f"{i}.jpg")
    layout = data.folder_layout(2)
    examples = data.list_examples(layout, root)
    stream = data.SegmentationPyDataset(examples, layout, 2, (6, 8), num_steps=2)
    first = [stream[i][0] for i in range(2)]
    stream.on_epoch_end()  # what keras' fit calls between epochs
    second = [stream[i][0] for i in range(2)]
    reference = data.SegmentationPyDataset(examples, layout, 2, (6, 8), start_step=2,
                                           num_steps=2)
    for got, expected in zip(second, (reference[0][0], reference[1][0])):
        np.testing.assert_array_equal(got, expected)  # epoch 2 continues the stream
    assert any(not np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.requires_tf
def test_a_finite_tf_dataset_draws_new_batches_when_iterated_again(tmp_path):
    root = _folder(tmp_path / "mine", [f"{i}.jpg" for i in range(6)], [str(i) for i in range(6)])
    for i in range(6):
        Image.fromarray(np.full((6, 8, 3), 20 * i, np.uint8)).save(root / "images" / f"{i}.jpg")
    layout = data.folder_layout(2)
    examples = data.list_examples(layout, root)
    dataset = data.make_tf_dataset(examples, layout, 2, (6, 8), num_steps=2)
    first, second = _batches_of(dataset, 2), _batches_of(dataset, 2)
    continued = _batches_of(data.make_tf_dataset(examples, layout, 2, (6, 8), start_step=2,
                                                 num_steps=2), 2)
    for got, expected in zip(second, continued):
        np.testing.assert_array_equal(got, expected)
    assert any(not np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("layout", ["camvid", "ade20k", "cityscapes"])
def test_fixed_layouts_report_what_they_leave_out(tmp_path, caplog, layout):
    """The built-in layouts' finders dropped stray files and masks without images silently."""
    root = tmp_path / "data"
    image_dir, mask_dir, stem, mask_name = {
        "camvid": ("train", "trainannot", "a", "a.png"),
        "ade20k": ("images/training", "annotations/training", "a", "a.png"),
        "cityscapes": ("leftImg8bit/train/aachen", "gtFine/train/aachen", "a_leftImg8bit",
                       "a_gtFine_labelIds.png"),
    }[layout]
    orphan = mask_name.replace("a", "orphan", 1)
    for folder in (image_dir, mask_dir):
        (root / folder).mkdir(parents=True)
    image_ext = ".jpg" if layout == "ade20k" else ".png"
    Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(root / image_dir / (stem + image_ext))
    for name in (mask_name, orphan):
        Image.fromarray(np.zeros((4, 6), np.uint8)).save(root / mask_dir / name)
    (root / image_dir / "notes.txt").write_text("not an image")
    if layout == "cityscapes":  # the other gtFine files are not masks of this layout
        Image.fromarray(np.zeros((4, 6), np.uint8)).save(root / mask_dir / "a_gtFine_color.png")
    with caplog.at_level(logging.WARNING, logger="deeplab_keras.data"):
        examples = data.list_examples(layout, str(root), "train")
    assert len(examples) == 1
    assert "1 files that are not this layout's images" in caplog.text and "notes.txt" in (
        caplog.text)
    assert "1 masks without an image" in caplog.text and orphan in caplog.text
    assert "color" not in caplog.text
