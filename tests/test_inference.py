"""`deeplab_keras.segment`: label maps at each image's own size, colours, overlays, CRF."""

import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras.data import classes

pytestmark = pytest.mark.tf_free_host


@pytest.fixture(scope="module")
def model():
    """A 1x1-conv 'segmenter' whose logits clearly differ between pixels (a randomly
    initialised DeepLab outputs near-ties, which make argmax checks meaningless)."""
    import keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 64.0)(inputs)
    outputs = keras.layers.Conv2D(3, 1, kernel_initializer=keras.initializers.RandomNormal(
        stddev=1.0, seed=0), bias_initializer=keras.initializers.Constant([0.5, 0.0, -0.5]))(x)
    return keras.Model(inputs, outputs)


def test_segment_runs_a_deeplab_model():
    deeplab = dk.models.DeepLabV3(backbone="mobilenetv2", num_classes=3, output_stride=16)
    result = dk.segment(deeplab, np.full((21, 26, 3), 90.0, np.float32))[0]
    assert result.labels.shape == (21, 26)


def test_segment_arrays_of_different_sizes_and_paths(model, tmp_path):
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (37, 45, 3)).astype(np.float32)
    b = rng.uniform(0, 255, (20, 31, 3)).astype(np.uint8)
    path = tmp_path / "c.png"
    Image.fromarray(rng.integers(0, 255, (25, 18, 3), dtype=np.uint8)).save(path)
    results = dk.segment(model, [a, b, str(path)])
    assert [r.labels.shape for r in results] == [(37, 45), (20, 31), (25, 18)]
    assert results[2].source == str(path) and results[0].source is None
    for r in results:
        assert r.labels.dtype == np.int32 and r.labels.min() >= 0 and r.labels.max() < 3
        assert r.color_mask.shape == r.labels.shape + (3,) and r.color_mask.dtype == np.uint8
        assert r.overlay.shape == r.color_mask.shape
        np.testing.assert_allclose(r.probabilities.sum(-1), 1.0, atol=1e-4)
        np.testing.assert_array_equal(np.argmax(r.probabilities, -1), r.labels)
    # Labels equal the model's own argmax on that image.
    expected = np.argmax(np.asarray(model.predict_on_batch(a[None]))[0], -1)
    np.testing.assert_array_equal(results[0].labels, expected)
    # Colours come from the palette given.
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    r = dk.segment(model, a, palette=palette)[0]
    np.testing.assert_array_equal(r.color_mask, palette[r.labels])
    assert abs(sum(r.class_fractions().values()) - 1.0) < 1e-6


def test_segment_with_crf_changes_nothing_in_shape(model):
    image = np.random.default_rng(1).uniform(0, 255, (24, 30, 3)).astype(np.float32)
    plain = dk.segment(model, image)[0]
    refined = dk.segment(model, image, crf=dk.layers.DenseCRF(iterations=3))[0]
    assert refined.labels.shape == plain.labels.shape
    assert not np.allclose(refined.probabilities, plain.probabilities)


def test_segment_bad_inputs(model):
    with pytest.raises(ValueError, match="0..1"):
        dk.segment(model, np.random.default_rng(0).uniform(0, 1, (20, 20, 3)))
    with pytest.raises(ValueError, match="shape"):
        dk.segment(model, np.zeros((2, 3, 4, 5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        dk.segment(model, np.full((8, 8, 3), np.nan))
    with pytest.raises(ValueError, match="Cannot read image"):
        dk.segment(model, __file__)
    with pytest.raises(ValueError, match="palette"):
        dk.segment(model, np.full((8, 8, 3), 100.0), palette=[[1, 2, 3]])
    with pytest.raises(ValueError, match="preset"):
        dk.segment(model, np.full((8, 8, 3), 100.0), crf="no_such_preset")


def test_default_palettes():
    assert classes.CAMVID_PALETTE.shape == (11, 3)


def test_segment_multiscale_and_flip(model):
    image = np.random.default_rng(2).uniform(0, 255, (30, 40, 3)).astype(np.float32)
    single = dk.segment(model, image)[0]
    multi = dk.segment(model, image, scales=(0.5, 1.0), flip=True)[0]
    assert multi.labels.shape == (30, 40)
    np.testing.assert_allclose(multi.probabilities.sum(-1), 1.0, atol=1e-4)
    # A 1x1-conv model is flip-equivariant: flip alone changes nothing.
    flipped = dk.segment(model, image, flip=True)[0]
    np.testing.assert_allclose(flipped.probabilities, single.probabilities, atol=1e-5)


def test_segment_uses_the_weight_record_palette(model):
    from deeplab_keras.weights.registry import get_record

    record = get_record("deeplabv3plus_xception65_cityscapes")
    three = dataclasses_replace(record, num_classes=3)
    model.weight_record = three
    try:
        r = dk.segment(model, np.full((6, 7, 3), 80.0, np.float32))[0]
        np.testing.assert_array_equal(r.color_mask, np.asarray(three.palette_array())[r.labels])
    finally:
        del model.weight_record


def dataclasses_replace(record, **changes):
    import dataclasses

    return dataclasses.replace(record, **changes)
