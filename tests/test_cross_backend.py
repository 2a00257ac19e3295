"""A model saved under one backend loads under the other with the same outputs."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import deeplab_keras  # noqa: F401  (registers the classes for loading)

SAVE_SCRIPT = """
import sys, numpy as np, keras
import deeplab_keras as dk
keras.utils.set_random_seed(3)
model = dk.models.DeepLabV3Plus(
    backbone="resnet50_slim", output_stride=16, num_classes=5, aspp_filters=8, decoder_filters=8,
    low_level_filters=4, separable=True, align_corners=True,
    backbone_kwargs=dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4), stem_filters=4))
x = np.random.default_rng(0).uniform(0, 255, (2, 45, 37, 3)).astype("float32")
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(x, np.random.default_rng(1).integers(0, 5, (2, 45, 37)), epochs=1, verbose=0)
model.save(sys.argv[1] + "/model.keras")
np.savez(sys.argv[1] + "/io.npz", x=x, y=np.asarray(model(x, training=False)))
"""


def _other_backend():
    return "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"


def test_saved_under_other_backend_loads_here(tmp_path):
    other = _other_backend()
    if importlib.util.find_spec(other) is None:
        pytest.skip(f"the {other} backend is not installed in this environment")
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(tmp_path)], check=True, env=env,
                   timeout=600)
    model = keras.saving.load_model(str(tmp_path / "model.keras"), safe_mode=True)
    io = np.load(tmp_path / "io.npz")
    np.testing.assert_allclose(np.asarray(model(io["x"], training=False)), io["y"], atol=1e-4)
    assert np.abs(io["y"]).max() > 0
