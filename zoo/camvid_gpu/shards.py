"""Weights split into files the device machine can return (each <= 16 MiB), and read back.

Each shard is a file of the package's converted-weights format, written by
`deeplab_keras.weights.cache.write_converted_weights` itself (float16 storage, batch-norm
statistics in float32, written atomically) over a slice of the model's variables, and read
by `cache.read_converted_weights`: `{variable path: array}`. Shard k of n is named
`<prefix>-k-of-n.h5`; no hash sidecar is kept (the device returns at most 8 files).

Example:

```python
names = write_shards("out", model.weights, "camvid_gpu_best", 11, 15 * 2**20)
stored = read_shards("out", names)      # {variable path: float16/float32 array}
```
"""

import os
import types

import numpy as np

BN_STATISTICS = ("moving_mean", "moving_variance")


def stored_bytes(variable):
    """Bytes `variable` takes in float16 storage (batch-norm statistics stay float32)."""
    count = int(np.prod(variable.shape))
    return count * (4 if variable.path.endswith(BN_STATISTICS) else 2)


def write_shards(folder, variables, name, num_classes, shard_bytes, prefix="best.weights"):
    """Writes `variables` (e.g. `model.weights`, holding the values to save) as float16 shards
    of at most ~`shard_bytes` each; removes older shards of `prefix`; returns the file names."""
    from deeplab_keras.weights import cache
    from deeplab_keras.weights import integrity

    groups, size = [[]], 0
    for variable in variables:
        if groups[-1] and size + stored_bytes(variable) > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(variable)
        size += stored_bytes(variable)
    names = [f"{prefix}-{k + 1}-of-{len(groups)}.h5" for k in range(len(groups))]
    for old in os.listdir(folder):
        if old.startswith(prefix + "-") and old not in names:
            os.unlink(os.path.join(folder, old))
    record = types.SimpleNamespace(name=name, num_classes=int(num_classes))
    for group, file_name in zip(groups, names):
        path = os.path.join(folder, file_name)
        cache.write_converted_weights(types.SimpleNamespace(weights=group), path, record,
                                      storage="float16")
        os.unlink(integrity.sidecar_of(path))
    return names


def read_shards(folder, names):
    """`{variable path: array}` over all the shards `names` in `folder` (each must exist, no
    variable twice, and the names must make one whole set `-1-of-n` .. `-n-of-n`)."""
    from deeplab_keras.weights import cache

    expected = {f"-{k + 1}-of-{len(names)}.h5" for k in range(len(names))}
    if {name[name.rfind("-", 0, name.rfind("-of-")):] for name in names} != expected:
        raise ValueError(f"{names} is not one whole set of shards.")
    stored = {}
    for name in names:
        part = cache.read_converted_weights(os.path.join(folder, name))
        repeated = set(part) & set(stored)
        if repeated:
            raise ValueError(f"{name} repeats variables {sorted(repeated)[:3]}.")
        stored.update(part)
    return stored
