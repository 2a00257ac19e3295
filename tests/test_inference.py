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
    result = dk.segment(deeplab, np.full((21, 26, 3), 90.0, np.float32))
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
    r = dk.segment(model, a, palette=palette)
    np.testing.assert_array_equal(r.color_mask, palette[r.labels])
    assert abs(sum(r.class_fractions().values()) - 1.0) < 1e-6


def test_segment_with_crf_changes_nothing_in_shape(model):
    image = np.random.default_rng(1).uniform(0, 255, (24, 30, 3)).astype(np.float32)
    plain = dk.segment(model, image)
    refined = dk.segment(model, image, crf=dk.layers.DenseCRF(iterations=3))
    assert refined.labels.shape == plain.labels.shape
    assert not np.allclose(refined.probabilities, plain.probabilities)


def test_segment_bad_inputs(model):
    with pytest.raises(ValueError, match="0..1"):
        dk.segment(model, np.random.default_rng(0).uniform(0, 1, (20, 20, 3)))
    with pytest.raises(ValueError, match="shape"):
        dk.segment(model, np.zeros((2, 3, 4, 5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        dk.segment(model, np.full((8, 8, 3), np.nan))
    with pytest.raises(ValueError, match="test_inference.py: Pillow cannot identify"):
        dk.segment(model, __file__)
    with pytest.raises(ValueError, match="palette"):
        dk.segment(model, np.full((8, 8, 3), 100.0), palette=[[1, 2, 3]])
    with pytest.raises(ValueError, match="preset"):
        dk.segment(model, np.full((8, 8, 3), 100.0), crf="no_such_preset")


def test_default_palettes():
    assert classes.CAMVID_PALETTE.shape == (11, 3)


def test_segment_multiscale_and_flip(model):
    image = np.random.default_rng(2).uniform(0, 255, (30, 40, 3)).astype(np.float32)
    single = dk.segment(model, image)
    multi = dk.segment(model, image, scales=(0.5, 1.0), flip=True)
    assert multi.labels.shape == (30, 40)
    np.testing.assert_allclose(multi.probabilities.sum(-1), 1.0, atol=1e-4)
    # A 1x1-conv model is flip-equivariant: flip alone changes nothing.
    flipped = dk.segment(model, image, flip=True)
    np.testing.assert_allclose(flipped.probabilities, single.probabilities, atol=1e-5)


def test_segment_uses_the_weight_record_palette(model):
    from deeplab_keras.weights.registry import get_record

    record = get_record("deeplabv3plus_xception65_cityscapes")
    three = dataclasses_replace(record, num_classes=3)
    model.weight_record = three
    try:
        r = dk.segment(model, np.full((6, 7, 3), 80.0, np.float32))
        np.testing.assert_array_equal(r.color_mask, np.asarray(three.palette_array())[r.labels])
    finally:
        del model.weight_record


def dataclasses_replace(record, **changes):
    import dataclasses

    return dataclasses.replace(record, **changes)


# Issue 14: the input rule, single image in -> single result out, model names and colours.

def test_one_image_gives_one_result_and_a_list_gives_a_list(model, tmp_path):
    image = np.random.default_rng(3).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    path = tmp_path / "one.png"
    Image.fromarray(image).save(path)
    for single in (image, str(path), Image.open(path)):
        assert isinstance(dk.segment(model, single), dk.inference.Segmentation)
    assert isinstance(dk.segment(model, [image]), list) and len(dk.segment(model, [image])) == 1
    assert len(dk.segment(model, np.stack([image, image]))) == 2  # a batch is a list
    # A PIL image and its file give the same answer.
    np.testing.assert_array_equal(dk.segment(model, Image.open(path)).labels,
                                  dk.segment(model, str(path)).labels)


def test_sixteen_bit_png_and_uint16_arrays_are_scaled_not_saturated(model, tmp_path):
    """A 16-bit PNG used to saturate 99.6% of its pixels at 255."""
    ramp = np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)
    path = tmp_path / "sixteen.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    from deeplab_keras.data.rgb import as_rgb_array

    from_file = as_rgb_array(str(path))
    from_pil = as_rgb_array(Image.open(path))
    from_array = as_rgb_array(np.repeat(ramp[..., None], 3, -1))
    for rgb in (from_file, from_pil):
        assert rgb.shape == (30, 40, 3) and rgb.max() <= 255
        assert np.mean(rgb >= 254) < 0.01  # not saturated
        np.testing.assert_array_equal(rgb[..., 0], (ramp >> 8).astype(np.float32))
    np.testing.assert_allclose(from_array, from_file, atol=1.0)
    assert dk.segment(model, str(path)).labels.shape == (30, 40)


def test_palette_cmyk_and_exif_rotated_pil_images(model, tmp_path):
    rng = np.random.default_rng(4)
    rgb = Image.fromarray(rng.integers(0, 255, (10, 14, 3), dtype=np.uint8))
    palette_image = rgb.convert("P")
    cmyk = rgb.convert("CMYK")
    rotated_path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    rgb.save(rotated_path, exif=exif)
    from deeplab_keras.data.rgb import as_rgb_array

    np.testing.assert_array_equal(as_rgb_array(palette_image),
                                  np.asarray(palette_image.convert("RGB"), np.float32))
    assert as_rgb_array(cmyk).shape == (10, 14, 3)
    assert dk.segment(model, Image.open(rotated_path)).labels.shape == (14, 10)
    assert dk.segment(model, str(rotated_path)).labels.shape == (14, 10)


@pytest.mark.parametrize("array, message", [
    (np.full((8, 8, 3), 300, np.int32), "outside 0..255"),
    (np.full((8, 8, 3), -5.0, np.float32), "outside 0..255"),
    (np.full((8, 8, 3), 1e4, np.float64), "outside 0..255"),
    (np.full((8, 8, 3), np.inf, np.float32), "NaN or inf"),
    (np.ones((8, 8, 3), bool), "dtype bool"),
])
def test_arrays_outside_the_rule_are_refused(model, array, message):
    with pytest.raises(ValueError, match=message):
        dk.segment(model, array)


def test_nan_images_are_refused_by_predict_logits_and_probabilities(model):
    from deeplab_keras import evaluation

    image = np.full((8, 8, 3), 100.0, np.float32)
    image[2, 3, 1] = np.nan
    for predict in (evaluation.predict_logits, evaluation.predict_probabilities):
        with pytest.raises(ValueError, match="1 NaN or inf"):
            predict(model, image)


def test_segment_uses_the_names_and_colours_saved_in_the_model(tmp_path):
    import keras

    names = ["road", "car", "tree", "sky"]
    palette = [[10, 20, 30], [200, 0, 0], [0, 200, 0], [0, 0, 200]]
    net = dk.models.DeepLabV3Plus(
        backbone="mobilenetv2", num_classes=4, backbone_kwargs=dict(alpha=0.35),
        aspp_filters=8, decoder_filters=8, low_level_filters=4, class_names=names,
        palette=palette)
    path = str(tmp_path / "four.keras")
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.class_names == tuple(names)
    np.testing.assert_array_equal(loaded.palette, palette)
    assert dk.inference.class_names_of(loaded) == tuple(names)
    r = dk.segment(loaded, np.full((16, 16, 3), 90.0, np.float32))
    np.testing.assert_array_equal(r.color_mask, np.asarray(palette, np.uint8)[r.labels])
    # A plain Keras model has neither: class_i and the VOC colours.
    plain = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)])
    assert dk.inference.class_names_of(plain) == ("class_0", "class_1")
