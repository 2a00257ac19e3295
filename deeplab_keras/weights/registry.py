"""The pretrained-weight registry: register, look up and list `WeightRecord`s.

The built-in records are in `deeplab_keras/weights/records/` (one file per source); what a
record holds is in `specs.py`; `register(record)` adds your own. The records carry everything
a user or a model card needs: architecture, classes, palette, preprocessing, CRF parameters,
metrics with their source, where the original file lives, how it is verified, license, paper.

Example:

```python
from deeplab_keras.weights import registry
registry.list_models("deeplabv3*")
record = registry.get_record("deeplab_resnet101_voc")
record.num_classes, record.preprocessing.mean, record.crf
```
"""

import difflib
import fnmatch

from deeplab_keras.weights import records
from deeplab_keras.weights import specs

_REGISTRY = {}


def register(record):
    """Adds `record` to the registry (validated); returns it, so it decorates too.

    Example:

    ```python
    registry.register(WeightRecord(name="my_model_voc", ...))
    ```
    """
    specs.validate(record)
    if record.name in _REGISTRY and _REGISTRY[record.name] != record:
        raise ValueError(f"A different weight record named {record.name!r} is already "
                         "registered; pick another name or `unregister` it first.")
    _REGISTRY[record.name] = record
    return record


def unregister(name):
    """Removes a record (tests and user-registered entries)."""
    _REGISTRY.pop(name, None)


def list_models(pattern=None):
    """Sorted registered names, optionally filtered by an fnmatch `pattern`.

    Example:

    ```python
    deeplab_keras.list_models("*_voc")
    ```
    """
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def get_record(name):
    """The `WeightRecord` called `name`; ValueError listing close names otherwise.

    Example:

    ```python
    deeplab_keras.weights.get_record("deeplabv3_resnet101_coco").metrics
    ```
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise ValueError(unknown_name_message(name))


def unknown_name_message(name):
    """'Unknown model ...' with close names and every registered name."""
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (f"Unknown model {name!r}.{hint} Registered models: {sorted(_REGISTRY)}. "
            "A path to a saved model must end in '.keras'.")


for _record in records.ALL:
    register(_record)


__all__ = ["get_record", "list_models", "register", "unknown_name_message", "unregister"]
