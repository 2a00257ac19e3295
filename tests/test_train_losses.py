import keras
import numpy as np
import pytest

from deeplab_keras import models
from deeplab_keras import train
from deeplab_keras.ops import resize_bilinear


def reference_ce(labels, logits, ignore=255, class_weights=None, pixel_weights=None):
    """Brute-force numpy weighted-mean cross-entropy over non-ignored pixels."""
    logits = logits.astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    total = weight_sum = 0.0
    for index in np.ndindex(labels.shape):
        label = labels[index]
        if label == ignore:
            continue
        w = 1.0 if class_weights is None else class_weights[label]
        if pixel_weights is not None:
            w *= pixel_weights[index]
        total -= w * log_probs[index + (label,)]
        weight_sum += w
    return total / weight_sum if weight_sum else 0.0


def random_case(shape=(2, 5, 7), classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, shape)
    labels[rng.random(shape) < 0.2] = 255
    logits = rng.normal(size=shape + (classes,)).astype("float32") * 3
    return labels, logits


def tiny_conv_model(classes=3):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(classes, 1)(x))


def test_matches_numpy_reference_with_ignore_class_and_sample_weights():
    labels, logits = random_case()
    loss = train.SegmentationCrossEntropy()
    np.testing.assert_allclose(float(loss(labels, logits)), reference_ce(labels, logits),
                               rtol=1e-5)
    weights = [0.5, 2.0, 1.0, 3.0]
    weighted = train.SegmentationCrossEntropy(class_weights=weights, num_classes=4)
    np.testing.assert_allclose(float(weighted(labels, logits)),
                               reference_ce(labels, logits, class_weights=weights), rtol=1e-5)
    per_image = np.array([1.0, 3.0], "float32")
    pixel_weights = np.broadcast_to(per_image[:, None, None], labels.shape)
    np.testing.assert_allclose(float(loss(labels, logits, sample_weight=per_image)),
                               reference_ce(labels, logits, pixel_weights=pixel_weights),
                               rtol=1e-5)
    # [B, H, W, 1] labels and float labels holding whole numbers are accepted.
    np.testing.assert_allclose(float(loss(labels[..., None].astype("float32"), logits)),
                               reference_ce(labels, logits), rtol=1e-5)


def test_ignored_pixels_do_not_matter_and_empty_batch_is_zero():
    labels, logits = random_case()
    loss = train.SegmentationCrossEntropy(ignore_label=255)
    changed = logits.copy()
    changed[labels == 255] = 100.0 * np.random.default_rng(1).normal(size=(4,))
    np.testing.assert_allclose(float(loss(labels, changed)), float(loss(labels, logits)),
                               rtol=1e-6)
    all_ignored = np.full(labels.shape, 255)
    assert float(loss(all_ignored, logits)) == 0.0
    # ADE20K-style ignore label 0 inside the class range.
    zero_ignored = train.SegmentationCrossEntropy(ignore_label=0)
    np.testing.assert_allclose(float(zero_ignored(np.where(labels == 255, 0, labels), logits)),
                               reference_ce(np.where(labels == 255, 0, labels), logits, ignore=0),
                               rtol=1e-5)


def test_upsample_logits_mode_resizes_logits_bilinearly():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 3, 4, 3)).astype("float32")
    labels = rng.integers(0, 3, (2, 9, 13))
    up = np.asarray(keras.ops.convert_to_numpy(resize_bilinear(logits, (9, 13))))
    loss = train.SegmentationCrossEntropy(label_mode="upsample_logits")
    np.testing.assert_allclose(float(loss(labels, logits)), reference_ce(labels, up), rtol=1e-5)


def test_downsample_labels_mode_takes_floor_index_nearest_labels():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (1, 9, 10))
    logits = rng.normal(size=(1, 3, 4, 3)).astype("float32")
    rows = [0, 3, 6]        # floor(i * 9 / 3)
    cols = [0, 2, 5, 7]     # floor(i * 10 / 4)
    expected = reference_ce(labels[:, rows][:, :, cols], logits)
    loss = train.SegmentationCrossEntropy(label_mode="downsample_labels")
    np.testing.assert_allclose(float(loss(labels, logits)), expected, rtol=1e-5)
    # Same-size inputs are untouched by either mode.
    np.testing.assert_allclose(float(loss(labels[:, :3, :4], logits)),
                               reference_ce(labels[:, :3, :4], logits), rtol=1e-5)


def test_out_of_range_labels_raise_eagerly_naming_values():
    labels, logits = random_case()
    labels[0, 0, 0], labels[1, 2, 3] = 7, -1
    loss = train.SegmentationCrossEntropy()
    with pytest.raises(ValueError, match=r"2 label pixel\(s\) have values \[-1, 7\]"):
        loss(labels, logits)
    with pytest.raises(ValueError, match="0.5"):
        loss(np.full((1, 2, 2), 0.5, "float32"), logits[:1, :2, :2])


def test_out_of_range_labels_make_the_fit_loss_nan_and_terminate():
    model = tiny_conv_model()
    images = np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 3)).astype("float32")
    labels = np.random.default_rng(1).integers(0, 3, (4, 8, 8))
    labels[0, 0, 0] = 3  # first batch holds a label outside [0, 3)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=train.SegmentationCrossEntropy())
    history = model.fit(images, labels, batch_size=2, epochs=3, verbose=0,
                        callbacks=[keras.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])
    assert all(np.isfinite(np.asarray(w)).all() for w in model.weights)


def test_config_round_trip_and_validation():
    loss = train.SegmentationCrossEntropy(ignore_label=0, class_weights=[1.0, 2.0],
                                          label_mode="downsample_labels", num_classes=2,
                                          align_corners=True)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(clone) is train.SegmentationCrossEntropy
    assert clone.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="label_mode"):
        train.SegmentationCrossEntropy(label_mode="nearest")
    with pytest.raises(ValueError, match="reduction='none'"):
        train.SegmentationCrossEntropy(reduction="none")
    with pytest.raises(ValueError, match="class_weights"):
        train.SegmentationCrossEntropy(class_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="num_classes=2"):
        train.SegmentationCrossEntropy(num_classes=2)(np.zeros((1, 2, 2)),
                                                      np.zeros((1, 2, 2, 3), "float32"))


def test_msc_four_losses_fit_step():
    base = tiny_conv_model()  # any model returning logits at input size
    msc = models.MSC(base, scales=(1.0, 0.75, 0.5), output_all_scales=True)
    losses = train.msc_losses(msc, ignore_label=255)
    assert set(losses) == {"fused", "scale_1", "scale_0.75", "scale_0.5"}
    images = np.random.default_rng(0).uniform(0, 255, (2, 33, 33, 3)).astype("float32")
    labels = np.random.default_rng(1).integers(0, 3, (2, 33, 33))
    labels[:, :4] = 255
    msc.compile(optimizer=keras.optimizers.SGD(0.01), loss=losses)
    history = msc.fit(images, train.msc_targets(labels, msc), batch_size=2, epochs=1,
                      verbose=0).history
    parts = [history[f"{key}_loss"][0] for key in losses]
    assert np.isfinite(history["loss"][0])
    np.testing.assert_allclose(history["loss"][0], sum(parts), rtol=1e-4)
    with pytest.raises(ValueError, match="output_all_scales=True"):
        train.msc_losses(models.MSC(base))
