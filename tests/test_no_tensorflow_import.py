"""On JAX, importing the package and building and running models never imports TensorFlow."""

import os
import subprocess
import sys

import keras
import pytest

SCRIPT = """
import sys, numpy as np, keras
import deeplab_keras as dk

pytestmark = pytest.mark.tf_free_host
model = dk.models.DeepLabV3Plus(backbone="resnet50_v1_5", num_classes=3, aspp_filters=8,
    decoder_filters=8, backbone_kwargs=dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4),
    stem_filters=4))
msc = dk.models.MSC(model, scales=(1.0, 0.5))
x = np.random.default_rng(0).uniform(0, 255, (2, 33, 33, 3)).astype("float32")
msc(x)
assert "tensorflow" not in sys.modules, "deeplab_keras imported TensorFlow on the JAX backend"
# From here Keras itself uses tf.io.gfile / tf.data when TensorFlow happens to be installed;
# .ci/run also runs the whole suite in an environment without TensorFlow.
msc.save(sys.argv[1])
keras.saving.load_model(sys.argv[1])
msc.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
msc.fit(x, np.zeros((2, 33, 33), "int32"), epochs=1, verbose=0)
print("ok")
"""


def test_jax_path_never_imports_tensorflow(tmp_path):
    if keras.backend.backend() != "jax":
        # The script always runs on JAX; .ci/run runs it in the JAX pass and without TF.
        pytest.skip("runs in the JAX-backend passes")
    if os.environ.get("DEEPLAB_KERAS_CI_NO_TF_PASS_FOLLOWS") == "1":
        # .ci/run sets this for its JAX pass: the same script then runs in a venv where
        # TensorFlow is not installed at all, a stricter check than this one.
        pytest.skip("runs in .ci/run's TensorFlow-free pass instead")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, KERAS_BACKEND="jax",
               PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "m.keras")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
