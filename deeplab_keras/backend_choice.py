"""The Keras backend when the user chose none: TensorFlow, or JAX on a host without TensorFlow.

Keras defaults to TensorFlow (and writes that default into `~/.keras/keras.json` on its first
import), so on a JAX-only host a plain `import keras` fails deep inside Keras with
"No module named 'tensorflow'". `import deeplab_keras` runs `choose_default_backend()` first:
when $KERAS_BACKEND is unset, keras.json names no other backend, TensorFlow is not installed and
JAX is, it sets KERAS_BACKEND=jax, and says so in one line on stderr when Keras is imported
(unless a command-line flag chose the backend meanwhile: `user_chose()`).

Example:

```python
import deeplab_keras as dk   # on a JAX-only host: "... using the JAX backend ..."
import keras
keras.backend.backend()      # 'jax'
```
"""

import importlib.util
import json
import os
import sys

_pending = {"note": False}
NOTE = ("deeplab_keras: TensorFlow is not installed, so Keras uses the JAX backend "
        "(set KERAS_BACKEND to choose another).")


def _configured_backend(environ):
    """The backend keras.json names, or None (no file, unreadable, or no 'backend' key)."""
    home = environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def choose_default_backend(environ=None, find_spec=importlib.util.find_spec):
    """Sets KERAS_BACKEND=jax where TensorFlow, Keras' default, cannot be imported.

    Returns the backend it chose, or None when it left the choice to Keras (the user chose,
    Keras is already imported, TensorFlow is installed, or JAX is not).
    """
    environ = os.environ if environ is None else environ
    if "keras" in sys.modules or environ.get("KERAS_BACKEND"):
        return None
    if _configured_backend(environ) not in (None, "tensorflow"):
        return None  # keras.json names a backend other than Keras' own default
    if find_spec("tensorflow") is not None or find_spec("jax") is None:
        return None
    environ["KERAS_BACKEND"] = "jax"
    _pending["note"] = True
    return "jax"


def user_chose():
    """The user named the backend (e.g. `deeplab-keras --backend jax`): no note."""
    _pending["note"] = False


def announce(stderr=None):
    """Prints the note once, if `choose_default_backend` chose (called as Keras is imported)."""
    if _pending["note"]:
        _pending["note"] = False
        print(NOTE, file=stderr or sys.stderr)
