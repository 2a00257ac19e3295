"""DenseCRF against the reference implementation, pydensecrf (marker `parity`).

Run: `python -m pytest -m parity tests/test_dense_crf_pydensecrf.py`
(needs `pip install pydensecrf2`, which builds from source).
"""

import os

import numpy as np
import pytest
from PIL import Image

from deeplab_keras.layers import DenseCRF

CAMVID_VAL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid",
                          "val")
PARAMS = {"deeplab_resnet101_voc": (4.0, 67.0, 3.0, 3.0, 1.0),
          "pydensecrf_readme": (10.0, 80.0, 13.0, 3.0, 3.0)}


def noisy_log_probs(labels, classes, noise, seed):
    rng = np.random.default_rng(seed)
    logits = np.eye(classes)[labels] * 2.0 + rng.normal(0, noise, labels.shape + (classes,))
    logits -= logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(-1, keepdims=True)
    return probs.astype(np.float32)


def pydensecrf_labels(dcrf, probs, image, params, iterations=10):
    from pydensecrf.utils import unary_from_softmax

    w1, ta, tb, w2, tg = params
    h, w, c = probs.shape
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs.transpose(2, 0, 1).copy())))
    crf.addPairwiseGaussian(sxy=tg, compat=w2)
    crf.addPairwiseBilateral(sxy=ta, srgb=tb, rgbim=np.ascontiguousarray(image), compat=w1)
    return np.array(crf.inference(iterations)).reshape(c, h, w).argmax(0)


def compare(probs, image, params):
    dcrf = pytest.importorskip("pydensecrf.densecrf")
    reference = pydensecrf_labels(dcrf, probs, image, params)
    w1, ta, tb, w2, tg = params
    layer = DenseCRF(appearance_weight=w1, theta_alpha=ta, theta_beta=tb, smoothness_weight=w2,
                     theta_gamma=tg, iterations=10)
    ours = np.asarray(layer([np.log(probs)[None], image[None].astype(np.float32)]))[0].argmax(-1)
    changed = (reference != probs.argmax(-1)).mean()
    agreement = (ours == reference).mean()
    return changed, agreement


@pytest.mark.parity
@pytest.mark.parametrize("preset", sorted(PARAMS))
@pytest.mark.parametrize("index", [10, 60])
def test_agrees_with_pydensecrf_on_camvid(preset, index):
    if not os.path.isdir(CAMVID_VAL):
        pytest.skip("CamVid is not in ../shared")
    name = sorted(os.listdir(CAMVID_VAL))[index]
    image = np.array(Image.open(os.path.join(CAMVID_VAL, name)).convert("RGB"))
    labels = np.asarray(Image.open(os.path.join(CAMVID_VAL, "..", "valannot", name))).astype(int)
    probs = noisy_log_probs(np.where(labels == 11, 0, labels), 11, noise=1.2, seed=index)
    changed, agreement = compare(probs, image, PARAMS[preset])
    print(f"{name} {preset}: pydensecrf changed {changed:.1%} of labels, agreement {agreement:.2%}")
    assert changed >= 0.20
    assert agreement >= 0.995


@pytest.mark.parity
def test_agrees_with_pydensecrf_on_a_synthetic_image():
    rng = np.random.default_rng(0)
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    labels = ((xx > 60).astype(int) + ((yy - 60) ** 2 + (xx - 110) ** 2 < 900)).astype(int)
    palette = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220]])
    image = np.clip(palette[labels] + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)
    probs = noisy_log_probs(labels, 3, noise=1.5, seed=1)
    changed, agreement = compare(probs, image, PARAMS["deeplab_resnet101_voc"])
    print(f"synthetic: pydensecrf changed {changed:.1%} of labels, agreement {agreement:.2%}")
    assert changed >= 0.20
    assert agreement >= 0.995
