import keras
import numpy as np
import pytest

from deeplab_keras.layers import ResizeByScale
from deeplab_keras.layers import ResizeLike
from deeplab_keras.ops import resize_bilinear
from tests.helpers import run_layer_test


def numpy_bilinear(x, out_h, out_w, align_corners):
    def coords(n_in, n_out):
        if align_corners:
            scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            c = np.arange(n_out) * scale
        else:
            c = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
            c = np.clip(c, 0, n_in - 1)
        lo = np.floor(c).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, c - lo

    y0, y1, fy = coords(x.shape[1], out_h)
    x0, x1, fx = coords(x.shape[2], out_w)
    top = x[:, y0] * (1 - fy)[None, :, None, None] + x[:, y1] * fy[None, :, None, None]
    return top[:, :, x0] * (1 - fx)[None, None, :, None] + top[:, :, x1] * fx[None, None, :, None]


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("size", [(33, 33), (17, 9), (65, 129)])
def test_resize_matches_numpy_reference(align_corners, size):
    x = np.random.default_rng(0).normal(size=(2, 17, 33, 3)).astype("float32")
    y = np.asarray(resize_bilinear(x, size, align_corners=align_corners))
    np.testing.assert_allclose(y, numpy_bilinear(x, *size, align_corners), atol=1e-5)


def test_align_corners_keeps_corner_pixels():
    x = np.random.default_rng(0).normal(size=(1, 5, 7, 2)).astype("float32")
    y = np.asarray(resize_bilinear(x, (17, 25), align_corners=True))
    for i, j in [(0, 0), (-1, -1), (0, -1), (-1, 0)]:
        np.testing.assert_allclose(y[0, i, j], x[0, i, j], atol=1e-6)


def test_resize_like_layer():
    x = np.ones((1, 9, 9, 4), "float32")
    ref = np.zeros((1, 33, 35, 3), "float32")
    run_layer_test(ResizeLike(align_corners=True), [x, ref], (1, 33, 35, 4))


def test_resize_by_scale_uses_ceil():
    x = np.ones((1, 321, 320, 3), "float32")
    assert ResizeByScale(0.75)(x).shape == (1, 241, 240, 3)
    assert ResizeByScale(0.5)(x).shape == (1, 161, 160, 3)
    with pytest.raises(ValueError, match="scale"):
        ResizeByScale(0.0)


@pytest.mark.requires_tf
def test_dynamic_shapes_under_tf_function():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function with unknown sizes is a TensorFlow-backend check")
    import tensorflow as tf

    layer = ResizeLike(align_corners=True)
    ref_layer = ResizeLike()

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 2]),
                                  tf.TensorSpec([None, None, None, 3])])
    def f(x, ref):
        return layer([x, ref]), ref_layer([x, ref])

    x = np.random.default_rng(0).normal(size=(1, 5, 6, 2)).astype("float32")
    a, b = f(x, np.zeros((1, 11, 13, 3), "float32"))
    np.testing.assert_allclose(a.numpy(), numpy_bilinear(x, 11, 13, True), atol=1e-5)
    np.testing.assert_allclose(b.numpy(), numpy_bilinear(x, 11, 13, False), atol=1e-5)


@pytest.mark.requires_tf
def test_xla_compiled_resize_is_correct():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("XLA via tf.function is a TensorFlow-backend check")
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(1, 9, 9, 3)).astype("float32")
    for align_corners in (False, True):
        for size in [(65, 65), (17, 17), (5, 7)]:
            f = tf.function(lambda t, s=size, a=align_corners: resize_bilinear(t, s, a),
                            jit_compile=True)
            np.testing.assert_allclose(f(x).numpy(), numpy_bilinear(x, *size, align_corners),
                                       atol=1e-5)
