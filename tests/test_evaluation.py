import keras
import numpy as np
import pytest

from deeplab_keras import evaluation
from deeplab_keras.ops import resize_bilinear

pytestmark = pytest.mark.tf_free_host


def pointwise_model(classes=3, seed=0):
    """A 1x1 conv: translation- and flip-equivariant, no border effects."""
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(classes, 1)(inputs))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=(1, 1, 3, classes)).astype("float32") / 50,
                       rng.normal(size=(classes,)).astype("float32")])
    return model


def identity_model():
    """Logits = image / 25.5: the argmax of a one-hot 'image' is its class."""
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, use_bias=False)(inputs))
    model.set_weights([np.eye(3, dtype="float32").reshape(1, 1, 3, 3) / 25.5])
    return model


def one_hot_examples(count=3, size=(13, 17)):
    rng = np.random.default_rng(0)
    for i in range(count):
        mask = rng.integers(0, 3, size)
        image = (np.eye(3)[mask] * 255).astype(np.uint8)
        mask[0, :3] = 255  # void pixels are skipped
        yield f"img_{i}", image, mask


def test_perfect_model_scores_one_and_counts_every_image():
    result = evaluation.evaluate(identity_model(), list(one_hot_examples(3)), num_classes=3,
                                 flip=True, class_names=["a", "b", "c"], progress=False)
    assert result["num_images"] == 3
    assert result["miou"] == 1.0 and result["pixel_accuracy"] == 1.0
    assert result["per_class_iou"] == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert result["confusion"].sum() == 3 * 13 * 17 - 3 * 3
    assert "mean IoU" in result["table"]
    # A generator (no len) with a progress bar works too.
    assert evaluation.evaluate(identity_model(), one_hot_examples(2), num_classes=3)[
        "num_images"] == 2


def test_evaluate_matches_confusion_matrix_of_predictions():
    model = pointwise_model()
    examples = list(one_hot_examples(2, size=(9, 11)))
    result = evaluation.evaluate(model, examples, num_classes=3, progress=False)
    cm = evaluation.ConfusionMatrix(3)
    for _, image, mask in examples:
        logits = keras.ops.convert_to_numpy(model(image[None].astype("float32")))[0]
        cm.update(mask, logits.argmax(-1))
    np.testing.assert_array_equal(result["confusion"], cm.matrix)
    assert result["miou"] == pytest.approx(cm.miou)


def test_failing_image_raises_with_its_name_and_nothing_is_skipped():
    examples = list(one_hot_examples(3))
    name, image, mask = examples[1]
    mask = mask.copy()
    mask[2, 2] = 9
    examples[1] = (name, image, mask)
    with pytest.raises(RuntimeError, match=r"example #1 \('img_1'\).*\[9\]"):
        evaluation.evaluate(identity_model(), examples, num_classes=3, progress=False)
    with pytest.raises(RuntimeError, match="img_0.*does not match"):
        evaluation.evaluate(identity_model(), [("img_0", image, mask[:5])], num_classes=3,
                            progress=False)
    with pytest.raises(RuntimeError, match="predicts 3 classes but num_classes=4"):
        evaluation.evaluate(identity_model(), examples[:1], num_classes=4, progress=False)
    with pytest.raises(ValueError, match="no images"):
        evaluation.evaluate(identity_model(), [], num_classes=3, progress=False)
    with pytest.raises(ValueError, match="expected 5 examples but received 3"):
        evaluation.evaluate(identity_model(), list(one_hot_examples(3)), num_classes=3,
                            num_examples=5, progress=False)


@pytest.mark.parametrize("crop, stride", [(8, 5), ((7, 16), (3, 16)), (40, None)])
def test_sliding_window_equals_full_image_for_a_pointwise_model(crop, stride):
    model = pointwise_model()
    image = np.random.default_rng(1).uniform(0, 255, (23, 30, 3)).astype("float32")
    full = evaluation.predict_logits(model, image)
    tiled = evaluation.predict_logits(model, image, crop_size=crop, stride=stride, batch_size=3)
    np.testing.assert_allclose(tiled, full, atol=1e-5)
    np.testing.assert_allclose(
        evaluation.predict_probabilities(model, image, scales=(0.75, 1.25), flip=True,
                                         crop_size=crop, stride=stride),
        evaluation.predict_probabilities(model, image, scales=(0.75, 1.25), flip=True), atol=1e-5)


def test_tiles_cover_the_image_and_stay_inside():
    for size, crop, stride in [(23, 8, 5), (100, 33, 22), (8, 8, 3), (5, 8, 3), (9, 8, 8)]:
        starts = evaluation.tile_starts(size, crop, stride)
        covered = np.zeros(size, bool)
        for s in starts:
            assert 0 <= s and s + min(crop, size) <= size
            covered[s:s + crop] = True
        assert covered.all()
    with pytest.raises(ValueError, match="gaps"):
        evaluation.predict_probabilities(pointwise_model(), np.zeros((9, 9, 3)), crop_size=4,
                                         stride=5)


def test_multiscale_and_flip_shapes_and_averaging():
    model = pointwise_model()
    image = np.random.default_rng(2).integers(0, 256, (19, 26, 3)).astype(np.uint8)
    probs = evaluation.predict_probabilities(model, image, scales=(0.5, 0.75, 1.0, 1.5),
                                             flip=True)
    assert probs.shape == (19, 26, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # Single scale without flip, logits: exactly the model's output.
    logits = keras.ops.convert_to_numpy(model(image[None].astype("float32")))[0]
    np.testing.assert_allclose(evaluation.predict_logits(model, image),
                               logits, atol=1e-6)
    # Flip of a flip-equivariant model changes nothing; on a constant image, neither do scales.
    np.testing.assert_allclose(evaluation.predict_probabilities(model, image, flip=True),
                               evaluation.predict_probabilities(model, image), atol=1e-6)
    constant = np.full((19, 26, 3), 77, np.uint8)
    np.testing.assert_allclose(
        evaluation.predict_probabilities(model, constant, scales=(0.5, 1.3)),
        evaluation.predict_probabilities(model, constant), atol=1e-6)
    # Manual two-scale average of softmax probabilities.
    def probs_at(scale):
        size = (int(np.ceil(19 * scale)), int(np.ceil(26 * scale)))
        x = resize_bilinear(image[None].astype("float32"), size)
        up = keras.ops.convert_to_numpy(resize_bilinear(model(x), (19, 26)))[0]
        return keras.ops.convert_to_numpy(keras.ops.softmax(up, axis=-1))

    np.testing.assert_allclose(
        evaluation.predict_probabilities(model, image, scales=(0.5, 1.0)),
        (probs_at(0.5) + probs_at(1.0)) / 2, atol=1e-5)


def test_low_resolution_logits_are_resized_to_the_image():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, strides=4, padding="same")(inputs))
    image = np.zeros((21, 30, 3), np.uint8)
    assert evaluation.predict_probabilities(model, image, crop_size=16).shape == (21, 30, 4)
    probs = evaluation.predict_probabilities(model, image, scales=(0.5,), flip=True)
    assert probs.shape == (21, 30, 4)
    with pytest.raises(ValueError, match="one RGB image"):
        evaluation.predict_probabilities(model, np.zeros((2, 21, 30, 3)))


def test_model_calls_run_one_traced_graph_and_keep_no_model_alive():
    """Evaluation and multi-scale `segment` call the model once per view: on TensorFlow one
    graph traced once for every batch and image size, equal to the eager call; the cache
    holds no reference that keeps a model alive."""
    import gc
    import weakref

    from deeplab_keras.evaluation import predict
    from tests import helpers

    model = helpers.tiny_models()["v3_mobilenet"]()
    for batch, height, width in ((1, 33, 41), (2, 25, 30), (1, 33, 41)):
        images = helpers.random_images(batch=batch, height=height, width=width)
        np.testing.assert_allclose(predict._call_model(model, images),
                                   np.asarray(model(images, training=False)), atol=1e-5)
    if keras.backend.backend() == "tensorflow":
        assert predict._TRACED[model].experimental_get_tracing_count() == 1
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None
