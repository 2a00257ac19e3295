"""Packages whose submodules and re-exported names load on first use (PEP 562), so importing
the package itself is cheap (no keras, no TensorFlow).

Example (in a package `__init__.py`):

```python
from deeplab_keras import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__, submodules=("download",), names={"fetch": "download"})
```
"""

import importlib


def attach(package, submodules=(), names=None):
    """`(__getattr__, __dir__, __all__)` for `package`.

    Args:
        package: the package's `__name__`.
        submodules: submodule names importable as attributes.
        names: `{attribute: submodule}`: the attribute is `submodule.attribute`.
    """
    names = dict(names or {})
    everything = sorted(set(submodules) | set(names))

    def __getattr__(name):  # noqa: N807 (the module-level hook's name)
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():  # noqa: N807
        return everything

    return __getattr__, __dir__, everything


__all__ = ["attach"]
