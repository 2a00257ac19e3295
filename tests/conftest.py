"""Test configuration: quiet TF logs, markers, and torch-before-TF ordering."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# torch segfaults when imported after TensorFlow has run ops in the same process;
# import it first whenever the parity tier is requested.
if any("parity" in arg for arg in sys.argv):
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:
        pass

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    has_tf = _importable("tensorflow")
    for item in items:
        if "requires_tf" in item.keywords and not has_tf:
            item.add_marker(pytest.mark.skip(
                reason="TensorFlow is not installed in this environment"))


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    np.random.seed(0)
    yield
    keras.backend.clear_session()
