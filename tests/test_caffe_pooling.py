"""CaffePooling2D against a direct loop over Caffe's PoolingLayer rules (pooling_layer.cpp):
sizes rounded up, max over real cells only, average divided by the cells inside the padded
extent."""

import numpy as np
import pytest

from deeplab_keras.layers import CaffePooling2D
from deeplab_keras.layers.pooling import pooled_size
from tests.helpers import run_layer_test


def caffe_pool(x, pool, kernel, stride, pad, rounding="ceil"):
    """Caffe's forward pass, written from its loops, on [H, W, C]."""
    height, width = x.shape[:2]

    def size(n):
        if rounding == "floor":
            return (n + 2 * pad - kernel) // stride + 1
        out = int(np.ceil((n + 2 * pad - kernel) / stride)) + 1
        return out - 1 if (out - 1) * stride >= n + pad else out

    out = np.zeros((size(height), size(width), x.shape[2]), np.float64)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            hs, ws = i * stride - pad, j * stride - pad
            he, we = min(hs + kernel, height + pad), min(ws + kernel, width + pad)
            pool_size = (he - hs) * (we - ws)
            window = x[max(hs, 0):min(he, height), max(ws, 0):min(we, width)]
            out[i, j] = window.max((0, 1)) if pool == "max" else window.sum((0, 1)) / pool_size
    return out


@pytest.mark.parametrize("pool, kernel, stride, pad", [("max", 3, 2, 1), ("avg", 3, 1, 1),
                                                        ("avg", 3, 2, 1), ("max", 2, 2, 0)])
@pytest.mark.parametrize("size", [(7, 10), (8, 9), (13, 13)])
def test_matches_caffe(pool, kernel, stride, pad, size):
    x = np.random.default_rng(sum(size)).normal(size=(2,) + size + (3,)).astype("float32")
    layer = CaffePooling2D(pool, kernel, stride, pad)
    expected = np.stack([caffe_pool(image, pool, kernel, stride, pad) for image in x])
    run_layer_test(layer, x, expected.shape)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-5)


def test_sizes_round_up_only_where_windows_do_not_tile():
    assert [pooled_size(n, 3, 2, 1, "ceil") for n in (250, 251, 513, 500)] == [126, 126, 257, 251]
    assert [pooled_size(n, 3, 2, 1, "floor") for n in (250, 251, 513, 500)] == [125, 126, 257,
                                                                                 250]
    with pytest.raises(ValueError, match="rounding"):
        CaffePooling2D(rounding="round")
