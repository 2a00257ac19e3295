"""Class pixel counts and median-frequency weights on masks the test writes."""

import numpy as np
import pytest
from PIL import Image

from deeplab_keras import data

pytestmark = pytest.mark.tf_free_host


def _masks(tmp_path, arrays):
    layout = data.folder_layout(num_classes=3, ignore_label=255)
    examples = []
    for i, mask in enumerate(arrays):
        image_path, mask_path = tmp_path / f"i{i}.png", tmp_path / f"m{i}.png"
        Image.fromarray(np.zeros(mask.shape + (3,), np.uint8)).save(image_path)
        Image.fromarray(mask.astype(np.uint8)).save(mask_path)
        examples.append(data.Example(str(image_path), str(mask_path)))
    return layout, examples


def test_counts_and_median_frequency(tmp_path):
    a = np.zeros((4, 5), np.uint8)
    a[0] = 1
    a[1, :2] = 255
    b = np.full((4, 5), 2, np.uint8)
    layout, examples = _masks(tmp_path, [a, b])
    counts = data.class_pixel_counts(examples, layout, progress=False)
    np.testing.assert_array_equal(counts, [13, 5, 20])
    weights = data.median_frequency_weights(examples, layout, progress=False)
    # freq: class 0: 13/18, class 1: 5/18 (only in a, 18 valid pixels), class 2: 20/20.
    freq = np.array([13 / 18, 5 / 18, 1.0])
    np.testing.assert_allclose(weights, np.median(freq) / freq, rtol=1e-6)


def test_absent_class_gets_zero_weight_and_bad_label_raises(tmp_path, capsys):
    layout, examples = _masks(tmp_path, [np.zeros((3, 3), np.uint8)])
    weights = data.median_frequency_weights(examples, layout, progress=False)
    assert weights == [1.0, 0.0, 0.0]
    assert "never appear" in capsys.readouterr().out
    layout, examples = _masks(tmp_path, [np.full((3, 3), 7, np.uint8)])
    with pytest.raises(ValueError, match="m0.png"):
        data.class_pixel_counts(examples, layout, progress=False)
