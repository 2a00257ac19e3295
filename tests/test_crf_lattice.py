"""Permutohedral-lattice Gaussian filter (deeplab_keras.crf.lattice) vs brute force."""

import keras
import numpy as np
import pytest
from keras import ops

from deeplab_keras.crf import build_lattice
from deeplab_keras.crf import compact_lattice
from deeplab_keras.crf import exact_normalized_filter
from deeplab_keras.crf import image_features
from deeplab_keras.crf import lattice as lat_mod
from deeplab_keras.crf import lattice_filter
from deeplab_keras.crf import lattice_ok
from deeplab_keras.crf import normalized_filter


def _image(h, w, seed=0, noise=8.0):
    """Smooth colour regions (a split, a band, stripes) plus Gaussian noise, values 0..255."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    im = np.zeros((h, w, 3), np.float32)
    im[..., 0] = 200.0 * (xx > w / 2)
    im[..., 1] = 200.0 * (yy > h / 3)
    im[..., 2] = 128.0 * ((xx + yy) % 40 < 20) + 60.0 * xx / w
    return np.clip(im + rng.normal(0, noise, im.shape), 0, 255).astype(np.float32)


def _values(im, channels=3, seed=1):
    """Noisy label scores that follow the image regions."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(im.shape[0] * im.shape[1], channels)).astype(np.float32)
    q[:, 0] += 2.0 * (im[..., 0].ravel() > 100)
    q[:, 1] += 2.0 * (im[..., 1].ravel() > 100)
    return q


def _np(x):
    return ops.convert_to_numpy(x)


# "sort" runs on every backend; "hash" (int64 keys, sparse splat/slice) is TensorFlow's default.
METHODS = list(lat_mod.METHODS_AVAILABLE())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [(30, 40), (60, 80)])
@pytest.mark.parametrize("thetas", [(10.0, 10.0), (20.0, 15.0), (5.0,), (12.0,)])
def test_normalized_filter_matches_exact(size, thetas, method):
    im = _image(*size)
    feats = image_features(im, *thetas)
    q = _values(im)
    lattice = build_lattice(feats, compact=size[0] > 30, method=method)
    out = _np(normalized_filter(lattice, q))
    ref = exact_normalized_filter(feats, q)
    rel = np.linalg.norm(out - ref) / np.linalg.norm(ref)
    corr = np.corrcoef(out.ravel(), ref.ravel())[0, 1]
    assert corr >= 0.99, corr
    assert rel <= 0.1, rel


def test_padded_and_compact_lattices_agree():
    im = _image(20, 24)
    feats = image_features(im, 8.0, 10.0)
    q = _values(im, 4)
    padded = build_lattice(feats, method="sort")
    a = _np(lattice_filter(padded, q))
    b = _np(lattice_filter(build_lattice(feats, compact=True, method="sort"), q))
    c = _np(lattice_filter(compact_lattice(padded), q))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
    for method in METHODS:  # every build gives the same filter
        lattice = build_lattice(feats, method=method)
        np.testing.assert_allclose(_np(lattice_filter(lattice, q)), a, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(_np(lattice_filter(lattice, q, transpose=True)),
                                   _np(lattice_filter(padded, q, transpose=True)),
                                   rtol=1e-5, atol=1e-5)
        norm = lat_mod.normalization(lattice)
        np.testing.assert_allclose(
            _np(lat_mod.normalized_filter_fn(lattice, norm, weight=3.0)(q)),
            3.0 * _np(normalized_filter(padded, q)), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow lattice")
def test_pixel_blocks_and_size_buckets_change_nothing():
    import tensorflow as tf

    from deeplab_keras.crf import lattice_tf

    im = _image(37, 41)  # 1517 pixels: uneven blocks, padded to a 2048-row XLA bucket
    feats = image_features(im, 6.0, 12.0)
    q = tf.constant(_values(im, 5))
    lattice = build_lattice(feats, method="hash")
    norm = lat_mod.normalization(lattice)
    # The XLA simplex search on padded rows gives the sort build's vertices.
    elevated = lattice_tf._elevate(tf.constant(feats))
    rem0, rank, bary, _, _ = lattice_tf._padded_simplex_keys(elevated)
    rem0_ref, rank_ref, bary_ref = lattice_tf._simplex(elevated)
    np.testing.assert_array_equal(_np(rem0), _np(rem0_ref))
    np.testing.assert_array_equal(_np(rank), _np(rank_ref))
    np.testing.assert_allclose(_np(bary), _np(bary_ref), atol=1e-6)
    outputs, grads = [], []
    for blocks in (1, 2, 3):
        apply = lattice_tf.normalized_filter_fn(lattice, norm, 2.0, blocks)
        with tf.GradientTape() as tape:
            tape.watch(q)
            out = apply(q)
            loss = tf.reduce_sum(out * tf.range(5, dtype=tf.float32))
        outputs.append(_np(out))
        grads.append(_np(tape.gradient(loss, q)))
    for out, grad in zip(outputs[1:], grads[1:]):
        np.testing.assert_allclose(out, outputs[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grad, grads[0], rtol=1e-5, atol=1e-6)
    assert np.abs(outputs[0]).max() > 0.1


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow lattice")
def test_parallel_unique_matches_unique():
    import tensorflow as tf

    from deeplab_keras.crf import lattice_tf

    keys = tf.constant(np.random.default_rng(0).integers(0, 2**40, 50)[
        np.random.default_rng(1).integers(0, 50, 997)], tf.int64)
    expected = np.unique(_np(keys))
    for parts in (1, 2, 3):
        table, index = lattice_tf._parallel_unique(keys, parts)
        assert sorted(_np(table)) == list(expected)  # each key once
        np.testing.assert_array_equal(_np(tf.gather(table, index)), _np(keys))


@pytest.mark.parametrize("method", METHODS)
def test_dedup_and_neighbours_match_numpy(method):
    im = _image(12, 16)
    feats = image_features(im, 4.0, 20.0)
    lattice = build_lattice(feats, compact=True, method=method)
    keys, bary = lat_mod._embed(feats)
    keys, bary = _np(keys), _np(bary)
    n, dp1, d = keys.shape
    np.testing.assert_allclose(bary.sum(axis=1), 1.0, atol=1e-5)
    assert (bary >= -1e-6).all()
    # Vertex ids must equal numpy's lexicographic unique ids.
    flat = keys.reshape(-1, d)
    uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
    m = int(_np(lattice["num_vertices"]))
    assert m == len(uniq)
    np.testing.assert_array_equal(_np(lattice["vertex_ids"]).ravel(), inverse.ravel())
    # Neighbours by dictionary lookup (ids are lexicographic, as in np.unique).
    index = {tuple(k): i for i, k in enumerate(uniq)}
    n1, n2 = _np(lattice["n1"]), _np(lattice["n2"])
    for j in range(dp1):
        step = np.full(d, -1)
        if j < d:
            step[j] += dp1
        for i, k in enumerate(uniq):
            assert n1[j, i] == index.get(tuple(k + step), m)
            assert n2[j, i] == index.get(tuple(k - step), m)
        assert n1[j, m] == m and n2[j, m] == m


@pytest.mark.parametrize("method", METHODS)
def test_vertex_count_bound_and_linear_growth(method):
    ratios = []
    for h, w in [(40, 60), (80, 120)]:
        im = _image(h, w, noise=2.0)
        for thetas in [(10.0, 10.0), (3.0,)]:
            feats = image_features(im, *thetas)
            m = int(_np(build_lattice(feats, compact=True, method=method)["num_vertices"]))
            n, d = feats.shape
            assert 0 < m <= (d + 1) * n
            ratios.append(m / n)
    # Doubling each side (4x pixels) keeps M/N about constant.
    assert 0.6 < ratios[2] / ratios[0] < 1.4, ratios
    assert 0.6 < ratios[3] / ratios[1] < 1.4, ratios


@pytest.mark.parametrize("method", METHODS)
def test_deeplab_parameters_do_not_overflow(method):
    """theta_alpha=67, theta_beta=3, colours 0..255 at 500x375: keys span > 2^32 linearised."""
    if keras.backend.backend() == "jax":
        import jax

        assert not jax.config.jax_enable_x64
    rng = np.random.default_rng(0)
    im = _image(375, 500, noise=20.0)
    im[:40, :40] = [0, 0, 0]
    im[-40:, -40:] = [255, 255, 255]
    im[100:140, 200:260] = rng.uniform(0, 255, (40, 60, 3))
    feats = image_features(im, 67.0, 3.0)
    lattice = build_lattice(feats, compact=True, method=method)
    assert method == "hash" or lattice_ok(lattice)
    key_span = np.ptp(_np(lat_mod._embed(feats)[0]).reshape(-1, 5), axis=0) + 1.0
    assert np.prod(key_span) > 2.0**32  # a single linearised int32 key would overflow
    m = int(_np(lattice["num_vertices"]))
    assert m <= 6 * feats.shape[0]
    ones = _np(lattice_filter(lattice, np.ones((feats.shape[0], 1), np.float32)))
    assert np.isfinite(ones).all() and (ones > 0).all()


def _grad(fn, x):
    """d sum(fn(x)) / dx on the active backend."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda t: fn(t).sum())(x))
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(fn(x))
    return tape.gradient(y, x).numpy()


@pytest.mark.parametrize("method", METHODS)
def test_linearity_and_adjoint(method):
    im = _image(10, 12)
    feats = image_features(im, 4.0, 15.0)
    lattice = build_lattice(feats, method=method)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 2)).astype(np.float32)
    y = rng.normal(size=(120, 2)).astype(np.float32)
    fx = _np(lattice_filter(lattice, x))
    fty = _np(lattice_filter(lattice, y, transpose=True))
    # Linearity.
    np.testing.assert_allclose(_np(lattice_filter(lattice, 2.0 * x + y)),
                               2.0 * fx + _np(lattice_filter(lattice, y)), rtol=1e-4, atol=1e-4)
    # <y, F x> == <F^T y, x>, and autodiff gives exactly the transposed filter.
    np.testing.assert_allclose(np.sum(y * fx), np.sum(fty * x), rtol=1e-4)
    grad = _grad(lambda t: ops.convert_to_tensor(y) * lattice_filter(lattice, t), x)
    np.testing.assert_allclose(grad, fty, rtol=1e-4, atol=1e-5)
    # Finite differences on a few coordinates (the map is linear, so they are exact).
    for i, c in [(0, 0), (57, 1), (119, 0)]:
        e = np.zeros_like(x)
        e[i, c] = 1.0
        fd = np.sum(y * _np(lattice_filter(lattice, e)))
        np.testing.assert_allclose(grad[i, c], fd, rtol=1e-4, atol=1e-5)
    # The normalised filter is symmetric up to blur-order effects; its gradient exists too.
    g = _grad(lambda t: normalized_filter(lattice, t), x)
    assert np.isfinite(g).all()


def test_jax_jit_matches_eager():
    if keras.backend.backend() != "jax":
        pytest.skip("jit check is JAX-only")
    import jax

    im = _image(16, 20)
    feats = image_features(im, 6.0, 12.0)
    q = _values(im)
    eager = _np(normalized_filter(build_lattice(feats), q))
    jitted = jax.jit(lambda f, v: normalized_filter(build_lattice(f), v))(feats, q)
    np.testing.assert_allclose(np.asarray(jitted), eager, rtol=1e-5, atol=1e-6)


def test_hash_build_inside_tf_function_with_unknown_size():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the hash build is TensorFlow-only")
    import tensorflow as tf

    im = _image(18, 22)
    feats = image_features(im, 6.0, 12.0)
    q = _values(im)
    fn = tf.function(lambda f, v: normalized_filter(build_lattice(f, method="hash"), v),
                     input_signature=[tf.TensorSpec([None, 5]), tf.TensorSpec([None, 3])])
    eager = _np(normalized_filter(build_lattice(feats, method="sort"), q))
    np.testing.assert_allclose(_np(fn(feats, q)), eager, rtol=1e-4, atol=1e-5)


def test_bad_method_is_a_clear_error():
    feats = image_features(_image(4, 5), 3.0, 3.0)
    with pytest.raises(ValueError, match="method"):
        build_lattice(feats, method="octree")
    if keras.backend.backend() != "tensorflow":
        with pytest.raises(ValueError, match="TensorFlow"):
            build_lattice(feats, method="hash")
