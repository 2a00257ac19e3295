"""The package's Keras classes, registered for `keras.saving` as soon as they can be.

`import deeplab_keras` imports neither keras nor TensorFlow (so `deeplab-keras --help` answers
at once), yet `keras.saving.load_model` must find every layer, model, loss and metric of the
package after it. `watch()` (called by `import deeplab_keras`) imports the modules below, which
register their classes with `keras.saving.register_keras_serializable`, at the first moment
both keras and deeplab_keras are fully imported:

- keras already imported: at once;
- keras imported later: right after `import keras` (or after the deeplab_keras module whose
  import pulled keras in) finishes.

A meta-path finder wraps the loaders of `keras` and of `deeplab_keras.*` modules to notice
those moments; it removes itself once the classes are registered.
"""

import importlib
import importlib.abc
import sys
import threading
import warnings

from deeplab_keras import backend_choice

REGISTERING_MODULES = (
    "deeplab_keras.layers",
    "deeplab_keras.backbones",
    "deeplab_keras.models",
    "deeplab_keras.train.losses",
    "deeplab_keras.train.metrics",
    "deeplab_keras.train.optimizers",
    "deeplab_keras.train.schedules",
)

_lock = threading.RLock()
_state = {"registered": False, "executing": 0}


def register_all():
    """Imports every module that registers Keras classes (idempotent)."""
    with _lock:
        if _state["registered"]:
            return
        _state["registered"] = True
        _uninstall()
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


def _ready():
    # Called right after a wrapped module finished executing (importlib still marks it
    # "initializing" then): ready once nothing wrapped is executing any more.
    return "keras" in sys.modules and not _state["executing"]


def _initializing(module):
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _after_import():
    with _lock:
        if _state["registered"] or not _ready():
            return
    try:
        register_all()
    except Exception as error:  # noqa: BLE001 - never break the user's own `import keras`
        warnings.warn(f"deeplab_keras could not register its Keras classes ({error}); "
                      "import deeplab_keras.models before keras.saving.load_model.",
                      stacklevel=2)


class _Watcher(importlib.abc.MetaPathFinder):
    """Wraps the loaders of keras and deeplab_keras modules to call `_after_import`."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras" and not fullname.startswith("deeplab_keras."):
            return None
        spec = _real_spec(self, fullname, path, target)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module):
            if fullname == "keras":
                backend_choice.announce()
            with _lock:
                _state["executing"] += 1
            try:
                original(module)
            finally:
                with _lock:
                    _state["executing"] -= 1
            _after_import()

        loader.exec_module = exec_module
        return spec


def _real_spec(watcher, fullname, path, target):
    for finder in list(sys.meta_path):
        if finder is watcher or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


_watcher = _Watcher()


def _uninstall():
    if _watcher in sys.meta_path:
        sys.meta_path.remove(_watcher)


def watch():
    """Registers the classes now if keras is imported, else as soon as it is."""
    if "keras" in sys.modules and not _initializing(sys.modules["keras"]):
        register_all()
        return
    with _lock:
        if not _state["registered"] and _watcher not in sys.meta_path:
            sys.meta_path.insert(0, _watcher)


__all__ = ["REGISTERING_MODULES", "register_all", "watch"]
