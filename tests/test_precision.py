"""`models.with_dtype_policy` and `load_model(..., dtype=...)`: the bfloat16 inference path
against the float32 reference path it converts from."""

import keras
import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import assets
from deeplab_keras import models
from tests import helpers

# bfloat16 keeps 8 significant bits: logits from a deep random network differ from float32
# by a few percent of their range; labels agree wherever the top two logits are not that close.
RELATIVE_LOGIT_TOLERANCE = 0.08
EXAMPLES_LABEL_AGREEMENT = 0.99


@pytest.mark.parametrize("family", ["v3_mobilenet", "v3plus_resnet", "v1"])
def test_mixed_bfloat16_matches_float32_on_tiny_models(family):
    model = helpers.tiny_models()[family]()
    images = helpers.random_images(batch=2, height=33, width=41)
    reference = np.asarray(model(images, training=False))
    fast = models.with_dtype_policy(model, "mixed_bfloat16")
    assert type(fast) is type(model) and fast is not model
    assert fast.dtype_policy.name == "mixed_bfloat16"
    assert models.unwrap(fast).backbone.dtype_policy.name == "mixed_bfloat16"
    assert model.dtype_policy.name == "float32"  # the original is left as it was
    assert all(w.dtype == "float32" for w in fast.weights)
    for a, b in zip(model.get_weights(), fast.get_weights()):
        np.testing.assert_array_equal(a, b)
    logits = fast(images, training=False)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    logits = np.asarray(logits)
    scale = np.abs(reference).max()
    assert np.abs(logits - reference).max() <= RELATIVE_LOGIT_TOLERANCE * scale + 1e-6
    assert np.mean(logits.argmax(-1) == reference.argmax(-1)) >= 0.9


def test_wrappers_convert_and_the_crf_stays_float32():
    net = helpers.tiny_models()["v3_mobilenet"]()
    crf = dk.layers.DenseCRF(iterations=2, theta_alpha=20.0, theta_beta=5.0)
    wrapped = models.MSC(models.CRFRefined(net, crf), scales=(0.75,))
    fast = models.with_dtype_policy(wrapped, "mixed_bfloat16")
    assert isinstance(fast, models.MSC) and isinstance(fast.model, models.CRFRefined)
    assert models.unwrap(fast).dtype_policy.name == "mixed_bfloat16"
    crf_layers = [layer for layer in fast.model.layers
                  if isinstance(layer, dk.layers.DenseCRF)]
    assert crf_layers and all(layer.dtype_policy.name == "float32" for layer in crf_layers)
    images = helpers.random_images(batch=1, height=17, width=21)
    # A random tiny network's logits are near ties (~1e-5), so compare the CRF's outputs, not
    # labels that flip on any rounding. MSC resizes the CRF's outputs (~-1.1) in bfloat16, whose
    # spacing there is 2**-7: within one spacing.
    expected = np.asarray(wrapped(images, training=False))
    np.testing.assert_allclose(np.asarray(fast(images, training=False)), expected, atol=2**-7)
    assert models.with_dtype_policy(fast, "mixed_bfloat16") is fast


def test_bad_policy_and_foreign_model_are_refused():
    net = helpers.tiny_models()["v3_mobilenet"]()
    with pytest.raises(ValueError, match="received 'bfloat16'"):
        models.with_dtype_policy(net, "bfloat16")
    plain = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1)])
    with pytest.raises(TypeError, match="Sequential"):
        models.with_dtype_policy(plain, "mixed_bfloat16")


def test_bundled_model_in_bfloat16_labels_the_examples_like_float32():
    reference = dk.load_model("deeplabv3plus_mobilenetv2_camvid")
    fast = dk.load_model("deeplabv3plus_mobilenetv2_camvid", dtype="mixed_bfloat16")
    assert fast.dtype_policy.name == "mixed_bfloat16"
    assert fast.class_names == reference.class_names
    assert fast.weight_record.name == "deeplabv3plus_mobilenetv2_camvid"
    agree = total = 0
    for path in assets.example_images():
        image = np.asarray(Image.open(path).convert("RGB"))
        expected = dk.segment(reference, image).labels
        labels = dk.segment(fast, image).labels
        agree += int(np.sum(labels == expected))
        total += labels.size
    assert agree / total >= EXAMPLES_LABEL_AGREEMENT, agree / total


def test_keras_file_loads_at_a_requested_precision(tmp_path):
    net = helpers.tiny_models()["v3_mobilenet"]()
    path = str(tmp_path / "tiny.keras")
    net.save(path)
    fast = dk.load_model(path, dtype="mixed_bfloat16")
    assert fast.dtype_policy.name == "mixed_bfloat16"
    images = helpers.random_images(batch=1)
    reference = np.asarray(net(images, training=False))
    assert np.abs(np.asarray(fast(images, training=False)) - reference).max() <= (
        RELATIVE_LOGIT_TOLERANCE * np.abs(reference).max())
