"""Checks on the real CamVid data in ../shared (marker `real_data`)."""

import os

import numpy as np
import pytest
from PIL import Image

from deeplab_keras import inference
from deeplab_keras import models
from deeplab_keras.data import classes

CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def camvid():
    if not os.path.isdir(CAMVID):
        pytest.skip(f"CamVid is not at {os.path.abspath(CAMVID)}")
    return CAMVID


def test_palette_matches_camvid_readme(camvid):
    palette = np.asarray(Image.open(os.path.join(camvid, "palette11.png")).convert("RGB"))
    np.testing.assert_array_equal(palette.reshape(-1, 3)[:11], classes.CAMVID_PALETTE)


def test_tiny_model_segments_real_frames_at_full_size(camvid):
    names = sorted(os.listdir(os.path.join(camvid, "val")))[:2]
    model = models.DeepLabV3Plus(backbone="resnet50_v1_5", output_stride=16, num_classes=11,
                                 aspp_filters=8, decoder_filters=8,
                                 backbone_kwargs=dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4),
                                                      stem_filters=4))
    for name in names:
        image = inference.load_rgb(os.path.join(camvid, "val", name))
        labels = np.asarray(Image.open(os.path.join(camvid, "valannot", name)))
        assert image.shape == (360, 480, 3) and labels.shape == (360, 480)
        assert labels.max() <= 11
        logits = model.predict(image[None].astype("float32"), verbose=0)
        assert logits.shape == (1, 360, 480, 11) and np.isfinite(logits).all()


def test_lattice_size_is_linear_in_pixels_on_real_frames(camvid):
    from deeplab_keras.crf import lattice as lattice_lib

    names = sorted(os.listdir(os.path.join(camvid, "val")))[:3]
    for name in names:
        image = np.asarray(Image.open(os.path.join(camvid, "val", name)).convert("RGB"))
        counts = []
        for crop in ((90, 120), (180, 240), (360, 480)):
            part = image[: crop[0], : crop[1]]
            features = lattice_lib.image_features(part, 67.0, 3.0)  # DeepLab's bilateral kernel
            lattice = lattice_lib.build_lattice(features, compact=True)
            m = int(np.asarray(lattice["num_vertices"]))
            n = features.shape[0]
            assert m <= 6 * n
            counts.append(m / n)
        # Points per pixel stay within a factor 2 while N grows 16x: O(N), not O(N^2).
        assert max(counts) / min(counts) < 2.0, (name, counts)
