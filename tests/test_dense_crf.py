import json

import keras
import numpy as np
import pytest

from deeplab_keras import models
from deeplab_keras.layers import DenseCRF
from deeplab_keras.layers.dense_crf import separable_gaussian
from tests.helpers import run_model_saving_test


def two_region_case(h=24, w=30, classes=3, noise=1.5, seed=0):
    rng = np.random.default_rng(seed)
    image = np.zeros((h, w, 3), np.float32)
    image[:, : w // 2] = (200, 30, 30)
    image[:, w // 2:] = (30, 30, 200)
    image += rng.normal(0, 4, image.shape)
    labels = (np.arange(w)[None, :] >= w // 2).astype(int).repeat(h, 0)
    logits = np.eye(classes)[labels] * 2.0 + rng.normal(0, noise, (h, w, classes))
    return logits.astype("float32"), np.clip(image, 0, 255).astype("float32"), labels


def small_crf(**kwargs):
    params = dict(iterations=5, theta_alpha=8.0, theta_beta=20.0, theta_gamma=1.0)
    params.update(kwargs)
    return DenseCRF(**params)


def test_refines_noisy_unaries_and_returns_log_marginals():
    logits, image, labels = two_region_case()
    out = np.asarray(small_crf()([logits[None], image[None]]))[0]
    assert out.shape == logits.shape and np.isfinite(out).all()
    np.testing.assert_allclose(np.log(np.exp(out).sum(-1)), 0.0, atol=1e-4)
    unary_acc = (logits.argmax(-1) == labels).mean()
    crf_acc = (out.argmax(-1) == labels).mean()
    assert unary_acc < 0.85 and crf_acc > 0.98, (unary_acc, crf_acc)


def test_batch_of_two_equals_two_single_runs():
    a_logits, a_image, _ = two_region_case(seed=1)
    b_logits, b_image, _ = two_region_case(seed=2)
    b_image = b_image[:, ::-1]  # a different image
    crf = small_crf(iterations=3)
    batch = np.asarray(crf([np.stack([a_logits, b_logits]), np.stack([a_image, b_image])]))
    single_a = np.asarray(crf([a_logits[None], a_image[None]]))[0]
    single_b = np.asarray(crf([b_logits[None], b_image[None]]))[0]
    np.testing.assert_allclose(batch[0], single_a, atol=1e-5)
    np.testing.assert_allclose(batch[1], single_b, atol=1e-5)


def _gradient(fn, x):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return tape.gradient(y, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    pytest.skip(f"no gradient helper for {backend}")


def test_gradient_matches_finite_differences():
    logits, image, _ = two_region_case(h=6, w=7, classes=2, seed=3)
    crf = small_crf(iterations=2, theta_alpha=3.0)
    weights = np.random.default_rng(0).normal(size=logits.shape).astype("float32")

    def objective(x):
        return keras.ops.sum(crf([x[None], image[None]])[0] * weights)

    grad = _gradient(objective, logits)
    rng = np.random.default_rng(1)
    for _ in range(4):
        i, j, k = rng.integers(0, 6), rng.integers(0, 7), rng.integers(0, 2)
        eps = 1e-2
        plus, minus = logits.copy(), logits.copy()
        plus[i, j, k] += eps
        minus[i, j, k] -= eps
        numeric = (float(objective(plus)) - float(objective(minus))) / (2 * eps)
        assert abs(numeric - grad[i, j, k]) < 2e-2 * max(1.0, abs(numeric)), (
            numeric, grad[i, j, k])


def test_separable_gaussian_is_exact():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(9, 11, 2)).astype("float32")
    out = np.asarray(separable_gaussian(values, 1.5))
    yy, xx = np.mgrid[0:9, 0:11]
    pos = np.stack([yy.ravel(), xx.ravel()], 1)
    d2 = ((pos[:, None] - pos[None]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * 1.5**2)) * (np.abs(pos[:, None] - pos[None]).max(-1) <= 5)
    np.testing.assert_allclose(out.reshape(-1, 2), kernel @ values.reshape(-1, 2), atol=1e-4)


def test_end_to_end_fit_step_changes_learnable_crf_weights(tmp_path):
    base = models.DeepLabV3(backbone="resnet50_v1_5", output_stride=16, num_classes=3,
                            aspp_filters=8, backbone_kwargs=dict(depths=(1, 1, 1, 1),
                                                                 widths=(4, 4, 4, 4),
                                                                 stem_filters=4))
    model = models.CRFRefined(base, small_crf(iterations=2, learnable=True))
    images = np.random.default_rng(0).uniform(0, 255, (2, 17, 19, 3)).astype("float32")
    labels = np.random.default_rng(1).integers(0, 3, (2, 17, 19))
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    crf = model.crf
    before = [np.array(w) for w in crf.weights]
    assert len(before) == 3
    history = model.fit(images, labels, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert all(not np.allclose(b, np.array(a)) for b, a in zip(before, crf.weights))
    run_model_saving_test(model, images, tmp_path)


def test_presets_and_config():
    crf = DenseCRF.from_preset("deeplab_resnet101_voc")
    assert (crf.appearance_weight, crf.theta_alpha, crf.theta_beta, crf.smoothness_weight,
            crf.theta_gamma) == (4.0, 67.0, 3.0, 3.0, 1.0)
    vgg = DenseCRF.from_preset("deeplab_vgg16_voc", iterations=5)
    assert (vgg.theta_alpha, vgg.smoothness_weight, vgg.theta_gamma, vgg.iterations) == (
        65.0, 2.0, 2.0, 5)
    clone = DenseCRF.from_config(json.loads(json.dumps(crf.get_config())))
    assert clone.get_config() == crf.get_config()
    with pytest.raises(ValueError, match="preset"):
        DenseCRF.from_preset("deeplab_unknown")


@pytest.mark.parametrize("logits_shape,image_shape,match", [
    ((1, 8, 8, 3), (1, 8, 9, 3), "width"),
    ((1, 8, 8, 3), (1, 8, 8, 4), "3 \\(RGB\\)"),
    ((1, 8, 8, 1), (1, 8, 8, 3), "classes >= 2"),
    ((1, 0, 8, 3), (1, 0, 8, 3), "empty"),
])
def test_bad_shapes_are_clear_errors(logits_shape, image_shape, match):
    with pytest.raises(ValueError, match=match):
        DenseCRF()([np.zeros(logits_shape, "float32"), np.zeros(image_shape, "float32")])


def test_non_finite_logits_are_a_clear_error():
    logits, image, _ = two_region_case(h=5, w=6)
    logits[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        small_crf()([logits[None], image[None]])
    with pytest.raises(ValueError, match="iterations"):
        DenseCRF(iterations=0)


@pytest.mark.requires_tf
def test_inside_tf_function_matches_eager():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function graph (dynamic lattice size) is a TensorFlow-backend check")
    import tensorflow as tf

    logits, image, _ = two_region_case(seed=4)
    crf = small_crf(iterations=3)
    eager = np.asarray(crf([logits[None], image[None]]))
    graph = tf.function(lambda a, b: crf([a, b]))(logits[None], image[None]).numpy()
    np.testing.assert_allclose(graph, eager, atol=1e-5)
    unknown = tf.function(lambda a, b: crf([a, b]), input_signature=[
        tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, None, None, 3])])
    np.testing.assert_allclose(unknown(logits[None], image[None]).numpy(), eager, atol=1e-5)


@pytest.mark.requires_tf
def test_eager_calls_run_one_graph_traced_once_for_any_image_size():
    """`deeplab_keras.segment` calls the layer eagerly: on TensorFlow that runs one graph per
    (batch, classes, dtypes), not op by op and not one trace per image size."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the traced eager path is TensorFlow's")
    from deeplab_keras.layers import dense_crf

    crf = small_crf(iterations=3)
    for h, w, seed in ((24, 30, 5), (17, 41, 6), (24, 30, 7)):
        logits, image, _ = two_region_case(h=h, w=w, seed=seed)
        out = np.asarray(crf([logits[None], image[None]]))
        op_by_op = np.asarray(crf._refine_batch(logits[None], image[None]))  # the former path
        np.testing.assert_allclose(out, op_by_op, atol=1e-5)
    (function,) = dense_crf._GRAPH_FUNCTIONS[crf].values()
    assert function.experimental_get_tracing_count() == 1
    import gc
    import weakref

    alive = weakref.ref(crf)
    del crf, function
    gc.collect()
    assert alive() is None  # the cache keeps no layer alive
