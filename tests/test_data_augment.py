"""Augmentation: nearest-neighbour masks, padding, determinism, image/mask consistency."""

import numpy as np
import pytest

from deeplab_keras import data

pytestmark = pytest.mark.tf_free_host


def _pair(height=20, width=30, labels=(0, 3, 7), seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    # Blocks of labels so that nearest-neighbour resizing keeps many of them.
    mask = np.asarray(labels, np.uint8)[(np.arange(height)[:, None] // 5 + np.arange(width) // 5)
                                        % len(labels)]
    return image, mask


def test_output_shapes_and_mask_values_only_from_the_original_set():
    image, mask = _pair()
    for seed in range(20):
        out_image, out_mask = data.augment(image, mask, np.random.default_rng(seed), (16, 24),
                                           scale_range=(0.3, 2.5), ignore_label=255)
        assert out_image.shape == (16, 24, 3) and out_image.dtype == np.uint8
        assert out_mask.shape == (16, 24) and out_mask.dtype == np.uint8
        assert set(np.unique(out_mask).tolist()) <= {0, 3, 7, 255}


def test_same_seed_same_output_different_seeds_differ():
    image, mask = _pair()
    first = data.augment(image, mask, np.random.default_rng(42), (16, 16))
    again = data.augment(image, mask, np.random.default_rng(42), (16, 16))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    others = [data.augment(image, mask, np.random.default_rng(s), (16, 16))[0] for s in range(5)]
    assert sum(not np.array_equal(first[0], o) for o in others) >= 4


def test_flip_and_crop_keep_image_and_mask_aligned():
    height, width = 12, 17
    mask = np.random.default_rng(0).integers(0, 5, (height, width), dtype=np.uint8)
    image = np.stack([mask * 40, np.arange(width, dtype=np.uint8)[None].repeat(height, 0) * 10,
                      np.full_like(mask, 3)], -1).astype(np.uint8)
    flips = 0
    for seed in range(16):
        out_image, out_mask = data.augment(image, mask, np.random.default_rng(seed), (10, 20),
                                           scale_range=None, flip=True, ignore_label=255,
                                           pad_value=(1, 2, 250))
        padded = out_mask == 255
        np.testing.assert_array_equal(out_image[..., 0][~padded], out_mask[~padded] * 40)
        assert (out_image[padded] == (1, 2, 250)).all()
        assert (out_image[~padded][:, 2] == 3).all()
        columns = out_image[0, :, 1][~padded[0]].astype(int)
        flips += bool(columns[0] > columns[-1])  # column ramp runs right-to-left when flipped
    assert 3 <= flips <= 13


def test_padding_uses_mean_pixel_and_ignore_label():
    image, mask = _pair(5, 5)
    out_image, out_mask = data.augment(image, mask, np.random.default_rng(0), (9, 11),
                                       scale_range=None, flip=False, ignore_label=254)
    np.testing.assert_array_equal(out_image[:5, :5], image)
    np.testing.assert_array_equal(out_mask[:5, :5], mask)
    assert (out_mask[5:] == 254).all() and (out_mask[:, 5:] == 254).all()
    assert (out_image[5:] == data.MEAN_PIXEL).all()
    assert data.MEAN_PIXEL == (124, 116, 104)


def test_center_pad_or_crop_and_helpers():
    image, mask = _pair(20, 30)
    out_image, out_mask = data.center_pad_or_crop(image, mask, (10, 10))
    np.testing.assert_array_equal(out_image, image[5:15, 10:20])
    np.testing.assert_array_equal(out_mask, mask[5:15, 10:20])
    out_image, out_mask = data.center_pad_or_crop(image, mask, (24, 30))
    np.testing.assert_array_equal(out_image[:20], image)
    assert (out_mask[20:] == 255).all()
    padded_image, padded_mask = data.pad_to_size(image, mask, (21, 10))
    assert padded_image.shape == (21, 30, 3) and padded_mask.shape == (21, 30)
    small_image, small_mask = data.resize_for_eval(image, mask, max_size=15)
    assert small_image.shape == (10, 15, 3) and small_mask.shape == (10, 15)
    assert set(np.unique(small_mask).tolist()) <= {0, 3, 7}


def test_bad_arguments():
    image, mask = _pair()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="crop_size"):
        data.augment(image, mask, rng, (0, 4))
    with pytest.raises(ValueError, match="mask must be uint8"):
        data.augment(image, mask.astype(np.int32), rng, (4, 4))
    with pytest.raises(ValueError, match="differ in size"):
        data.augment(image, mask[:-1], rng, (4, 4))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        data.augment(image, mask, 0, (4, 4))
    with pytest.raises(ValueError, match="scale_range"):
        data.augment(image, mask, rng, (4, 4), scale_range=(2.0, 1.0))
