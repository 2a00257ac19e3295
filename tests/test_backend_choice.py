"""Without TensorFlow, `import deeplab_keras` makes Keras use JAX (with one line saying so)."""

import importlib.util
import io
import json
import os
import subprocess
import sys

import pytest

from deeplab_keras import backend_choice

pytestmark = pytest.mark.tf_free_host


def _find_spec(installed):
    return lambda name: object() if name in installed else None


@pytest.mark.parametrize("installed, environ, keras_json, expected", [
    ({"jax"}, {}, None, "jax"),                                     # JAX-only host
    ({"jax"}, {}, {"backend": "tensorflow"}, "jax"),                # Keras' own written default
    ({"jax", "tensorflow"}, {}, None, None),                        # TensorFlow stays default
    ({"jax"}, {"KERAS_BACKEND": "tensorflow"}, None, None),         # the user chose
    ({"jax"}, {}, {"backend": "torch"}, None),                      # keras.json chose
    (set(), {}, None, None),                                        # nothing to fall back to
])
def test_choice(tmp_path, installed, environ, keras_json, expected):
    before = environ.get("KERAS_BACKEND")
    environ = dict(environ, KERAS_HOME=str(tmp_path))
    if keras_json is not None:
        (tmp_path / "keras.json").write_text(json.dumps(keras_json))
    stderr = io.StringIO()
    saved = sys.modules.pop("keras", None)
    try:
        chosen = backend_choice.choose_default_backend(environ, _find_spec(installed))
        backend_choice.announce(stderr)
    finally:
        if saved is not None:
            sys.modules["keras"] = saved
    assert chosen == expected
    if expected:
        assert environ["KERAS_BACKEND"] == expected
        assert stderr.getvalue().strip() == backend_choice.NOTE
    else:
        assert environ.get("KERAS_BACKEND") == before
        assert stderr.getvalue() == ""


def test_a_flag_choice_silences_the_note(tmp_path):
    environ, stderr = {"KERAS_HOME": str(tmp_path)}, io.StringIO()
    saved = sys.modules.pop("keras", None)
    try:
        assert backend_choice.choose_default_backend(environ, _find_spec({"jax"})) == "jax"
    finally:
        if saved is not None:
            sys.modules["keras"] = saved
    backend_choice.user_chose()
    backend_choice.announce(stderr)
    assert stderr.getvalue() == ""


def test_jax_only_host_imports_and_runs(tmp_path):
    """The user's plain script on a host without TensorFlow (.ci/run's TensorFlow-free venv)."""
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("needs a host without TensorFlow: runs in .ci/run's TensorFlow-free pass")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)
    script = ("import numpy as np, deeplab_keras as dk, keras\n"
              "model = dk.models.DeepLabV3Plus(backbone='mobilenetv2', num_classes=2,"
              " backbone_kwargs=dict(alpha=0.35), aspp_filters=8, decoder_filters=8)\n"
              "print(keras.backend.backend(), model.predict(np.zeros((1, 32, 32, 3)),"
              " verbose=0).shape)\n")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["jax", "(1,", "32,", "32,", "2)"]
    assert backend_choice.NOTE in done.stderr
