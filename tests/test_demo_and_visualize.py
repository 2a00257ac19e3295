import os

import numpy as np
import pytest
from PIL import Image

from deeplab_keras import assets
from deeplab_keras import demo
from deeplab_keras import inference
from deeplab_keras import models
from deeplab_keras import visualize
from deeplab_keras.data import classes

pytestmark = pytest.mark.tf_free_host


def test_bundled_examples_exist_and_load():
    paths = assets.example_images()
    assert len(paths) >= 3
    for path in paths:
        image = inference.load_rgb(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_segment_and_save_writes_pictures(tmp_path):
    tiny = dict(backbone="resnet50_v1_5", output_stride=16, num_classes=11, aspp_filters=8,
                backbone_kwargs=dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4), stem_filters=4))
    image = inference.load_rgb(assets.example_images()[0])
    # A model given CamVid's names and colours draws with them; one without draws with VOC's
    # colours (no guess from the class count: an 11-class model is not necessarily CamVid).
    for kwargs, palette in ((dict(class_names=classes.CAMVID_CLASSES,
                                  palette=classes.CAMVID_PALETTE), classes.CAMVID_PALETTE),
                            ({}, classes.voc_palette(11))):
        model = models.DeepLabV3(**tiny, **kwargs)
        out = tmp_path / str(len(kwargs))
        written = visualize.segment_and_save(model, assets.example_images()[:1], str(out))
        assert len(written) == 3
        mask = np.asarray(Image.open(written[0]))
        assert mask.shape == image.shape
        colours = {tuple(c) for c in mask.reshape(-1, 3)}
        assert colours <= {tuple(c) for c in palette}
        panel = np.asarray(Image.open(written[2]))
        legend = {tuple(c) for c in panel[image.shape[0]:].reshape(-1, 3)}
        assert {tuple(c) for c in palette} <= legend  # every class in the legend


def test_bad_image_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg"):
        inference.load_rgb(str(bad))


def test_colorize_overlay_panel():
    palette = classes.voc_palette()
    assert tuple(palette[1]) == (128, 0, 0) and tuple(palette[15]) == (192, 128, 128)
    labels = np.array([[0, 1], [2, 255]])
    rgb = classes.colorize(labels, palette[:21])
    assert tuple(rgb[1, 1]) == (0, 0, 0) and tuple(rgb[0, 1]) == (128, 0, 0)
    image = np.full((2, 2, 3), 200, np.uint8)
    blend = inference.overlay(image, rgb, alpha=0.5)
    assert tuple(blend[0, 1]) == (164, 100, 100)
    assert visualize.panel([image, rgb]).shape == (2, 8, 3)
    with pytest.raises(ValueError, match="2-D"):
        classes.colorize(np.zeros((2, 2, 2), int))


def _run_demo(args):
    from absl import flags

    flags.FLAGS(["demo"] + args)
    try:
        return demo.main([])
    finally:
        flags.FLAGS.unparse_flags()


def test_demo_main_on_tiny_images(tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(src / "a.png")
    monkeypatch.setattr(demo, "load", lambda name: models.DeepLabV3(
        backbone="resnet50_v1_5", num_classes=11, aspp_filters=8,
        backbone_kwargs=dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4), stem_filters=4)))
    assert _run_demo([f"--images={src}/*.png", f"--output_dir={tmp_path / 'out'}"]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == [
        "a_compare.png", "a_crf_mask.png", "a_crf_overlay.png", "a_crf_panel.png",
        "a_mask.png", "a_overlay.png", "a_panel.png"]
    assert _run_demo([f"--images={src}/*.png", f"--output_dir={tmp_path / 'plain'}",
                      "--nocrf"]) == 0
    assert sorted(os.listdir(tmp_path / "plain")) == [
        "a_compare.png", "a_mask.png", "a_overlay.png", "a_panel.png"]


def test_demo_main_job_with_the_bundled_model(tmp_path, capsys):
    """The README's main job on one bundled example: real model, with and without CRF."""
    example = assets.example_images()[0]
    assert _run_demo([f"--images={example}", f"--output_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "deeplabv3plus_resnet50w40_camvid" in out and str(tmp_path) in out
    stem = os.path.splitext(os.path.basename(example))[0]
    plain = np.asarray(Image.open(tmp_path / f"{stem}_mask.png"))
    refined = np.asarray(Image.open(tmp_path / f"{stem}_crf_mask.png"))
    assert plain.shape == refined.shape == (360, 480, 3)
    assert 0 < np.mean(np.any(plain != refined, axis=-1)) < 0.5
    compare = np.asarray(Image.open(tmp_path / f"{stem}_compare.png"))
    assert compare.shape[1] == 3 * 480 + 2 * 4 and compare.shape[0] > 360


def test_legend_titled_stack():
    strip = visualize.legend(classes.CAMVID_CLASSES, classes.CAMVID_PALETTE, 300,
                             present={0, 3})
    assert strip.shape[1] == 300 and strip.dtype == np.uint8
    colours = {tuple(c) for c in strip.reshape(-1, 3)}
    assert tuple(classes.CAMVID_PALETTE[3]) in colours
    assert tuple(classes.CAMVID_PALETTE[8]) not in colours
    titled = visualize.titled(np.zeros((10, 20, 3), np.uint8), "x", height=16)
    assert titled.shape == (26, 20, 3)
    stacked = visualize.stack([np.zeros((5, 10, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])
    assert stacked.shape == (14, 10, 3) and (stacked[-1, -1] == 255).all()
