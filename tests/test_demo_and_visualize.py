import os

import numpy as np
import pytest
from PIL import Image

from deeplab_keras import demo
from deeplab_keras import inference
from deeplab_keras import models
from deeplab_keras import visualize


def test_bundled_examples_exist_and_load():
    paths = demo.example_images()
    assert len(paths) >= 3
    for path in paths:
        image = inference.load_rgb(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_segment_and_save_writes_pictures(tmp_path):
    model = models.DeepLabV3(backbone="resnet50_v1_5", output_stride=16, num_classes=11,
                             aspp_filters=8,
                             backbone_kwargs=dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4),
                                                  stem_filters=4))
    written = inference.segment_and_save(model, demo.example_images()[:1], str(tmp_path))
    assert len(written) == 3
    mask = np.asarray(Image.open(written[0]))
    image = inference.load_rgb(demo.example_images()[0])
    assert mask.shape == image.shape
    colours = {tuple(c) for c in mask.reshape(-1, 3)}
    assert colours <= {tuple(c) for c in visualize.CAMVID_PALETTE}


def test_bad_image_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg"):
        inference.load_rgb(str(bad))


def test_colorize_overlay_panel():
    palette = visualize.voc_palette()
    assert tuple(palette[1]) == (128, 0, 0) and tuple(palette[15]) == (192, 128, 128)
    labels = np.array([[0, 1], [2, 255]])
    rgb = visualize.colorize(labels, palette[:21])
    assert tuple(rgb[1, 1]) == (0, 0, 0) and tuple(rgb[0, 1]) == (128, 0, 0)
    image = np.full((2, 2, 3), 200, np.uint8)
    blend = visualize.overlay(image, rgb, alpha=0.5)
    assert tuple(blend[0, 1]) == (164, 100, 100)
    assert visualize.panel([image, rgb]).shape == (2, 8, 3)
    with pytest.raises(ValueError, match="2-D"):
        visualize.colorize(np.zeros((2, 2, 2), int))


def test_demo_main_on_tiny_images(tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(src / "a.png")
    monkeypatch.setattr(demo, "build_model", lambda name: models.DeepLabV3(
        backbone="resnet50_v1_5", num_classes=11, aspp_filters=8,
        backbone_kwargs=dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4), stem_filters=4)))
    from absl import flags

    flags.FLAGS(["demo", f"--images={src}/*.png", f"--output_dir={tmp_path / 'out'}"])
    try:
        assert demo.main([]) == 0
    finally:
        flags.FLAGS.unparse_flags()
    assert sorted(os.listdir(tmp_path / "out")) == ["a_mask.png", "a_overlay.png", "a_panel.png"]
