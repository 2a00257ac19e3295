"""The converted-weights cache and its h5 format: convert a record's source once, verify on
every load, and move weights into a model by variable path (keeping all but the classifier when
the class count differs).

A converted file is `<cache_dir>/converted/<name>.weights.h5`, written atomically with a
`.sha256` sidecar (`integrity`); a file that no longer matches is moved aside and converted
again from the verified source. The bundled weights use the same format, with the sha256 pinned
in the record instead of a sidecar.

Example:

```python
path = cache.ensure_converted(record)           # downloads and converts the first time
reinitialised = cache.load_converted_weights(model, path, record)
```
"""

import logging
import os

import numpy as np

from deeplab_keras import assets
from deeplab_keras import files
from deeplab_keras.convert import dispatch
from deeplab_keras.convert.common import ConversionReport
from deeplab_keras.weights import cache_folder
from deeplab_keras.weights import download
from deeplab_keras.weights import integrity
from deeplab_keras.weights import original_files
from deeplab_keras.weights.cache_folder import cache_dir
from deeplab_keras.weights.errors import WeightsIntegrityError
from deeplab_keras.weights.specs import OWN_FORMAT

logger = logging.getLogger("deeplab_keras.weights")

H5_FORMAT = "deeplab_keras.converted_weights/1"
CONVERTED_SUBDIR = "converted"
STORAGES = ("float32", "float16")


def converted_path(record):
    """Where the converted weights of `record` live in the cache."""
    return os.path.join(cache_dir(), CONVERTED_SUBDIR, f"{record.name}.weights.h5")


def ensure_converted(record, build, *, progress=True, model=None):
    """Path of the verified converted weights of `record`, converting once if needed.

    A cached file whose sha256 does not match its sidecar is moved aside
    (`.corrupt-<time>-<pid>`) with a warning and converted again from the
    (verified) source file. Conversion fills `model` when given (it must be built from the
    record unchanged), else `build(record)`.
    """
    path = converted_path(record)
    cache_folder.ensure_folder(os.path.dirname(path))  # CacheNotWritableError with the fix
    with files.file_lock(path + ".lock"):
        if os.path.exists(path):
            try:
                verify_converted(path)
                return path
            except WeightsIntegrityError as e:
                integrity.move_aside(path, f"{e} Converting again from the source")
        source = original_files.fetch_source(record, progress=progress, trust=False)
        model = build(record) if model is None else model
        report = _convert_or_move_aside(record, model, source)
        download.trust(source, record.name)
        logger.info("%s: converted %s (%s).", record.name, source.path, report.summary())
        write_converted_weights(model, path, record)
    return path


def _convert_or_move_aside(record, model, source):
    """Converts; a file whose content does not convert is moved aside, never trusted."""
    try:
        return _convert(record, model, source.path)
    except ValueError as error:  # ConversionError and every "this file is wrong" error
        if not source.trust_on_first_use or source.sidecar:
            raise  # a published (or already trusted) hash vouches for the file itself
        moved = integrity.move_aside(source.path, f"it did not convert: {error}")
        raise ValueError(
            f"{record.name}: the file downloaded from {source.source} did not convert "
            f"({error}). No hash was recorded for it (nothing published one), so it is not "
            f"trusted: it was moved aside to {moved}. Check that {record.urls[0]} is the "
            "right file, then call load_model again to download it anew.") from error


def _convert(record, model, source):
    if record.converter == OWN_FORMAT:
        if load_converted_weights(model, source, record):
            raise ValueError(f"{source}: class dimension differs from the record's.")
        return ConversionReport(mapped={v.path: v.path for v in model.weights})
    with original_files.converter_input(record, source) as path:
        return dispatch.convert_file(record.converter, model, path)


def verify_converted(path):
    """Raises `WeightsIntegrityError` unless `path` matches its `.sha256` sidecar."""
    sidecar = integrity.sidecar_of(path)
    expected = integrity.read_sidecar(sidecar, error=WeightsIntegrityError,
                                      hint="It is converted again from the source.")
    if expected is None:
        raise WeightsIntegrityError(f"Converted weights {path} have no sha256 sidecar "
                                    f"{sidecar}.")
    actual = files.sha256_file(path)
    if actual != expected:
        raise WeightsIntegrityError(f"Converted weights {path} are corrupt: sha256 {actual} "
                                    f"!= recorded {expected} ({sidecar}).")
    return actual


def bundled_weights_path(record):
    """Path of a record's weights shipped in the package, verified against its sha256."""
    path = assets.package_path(record.bundled)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{record.name}: the bundled weights {path} are missing from this installation. "
            "Reinstall deeplab-keras (`pip install --force-reinstall deeplab-keras`, or "
            "`git lfs pull`/`git checkout` in a source checkout).")
    actual = files.sha256_file(path)
    if actual != record.sha256:
        raise WeightsIntegrityError(
            f"{record.name}: the bundled weights {path} are corrupt or were replaced: sha256 "
            f"{actual} != {record.sha256} recorded in deeplab_keras/weights/records/. "
            "Reinstall the package.")
    return path


def write_converted_weights(model, path, record, storage="float32"):
    """Writes `model`'s weights by variable path to `path` (atomic) plus a sha256 sidecar.

    `storage="float16"` halves the file: every float weight is stored as
    float16 except batch-norm moving statistics (kept float32: variances
    can underflow float16) and any weight float16 cannot hold (|x| > 65504).
    Loading casts back to the variable's dtype. Returns the file's sha256.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}; received {storage!r}.")
    import h5py

    with files.atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = H5_FORMAT
            f.attrs["record"] = record.name
            f.attrs["num_classes"] = int(record.num_classes)
            group = f.create_group("weights")
            for i, variable in enumerate(model.weights):
                value = _stored_value(np.asarray(variable.numpy()), variable.path, storage)
                data = group.create_dataset(f"{i:05d}", data=value)
                data.attrs["path"] = variable.path
        digest = files.sha256_file(tmp)
        integrity.write_sidecar(path, digest)
    return digest


def _stored_value(value, path, storage):
    if (storage == "float16" and value.dtype.kind == "f"
            and not path.endswith(("moving_mean", "moving_variance"))
            and np.all(np.abs(value) <= np.finfo(np.float16).max)):
        return value.astype(np.float16)
    return value


def read_converted_weights(path):
    """`{variable_path: array}` from a file written by `write_converted_weights`."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != H5_FORMAT:
            raise ValueError(f"{path} is not a deeplab_keras converted-weights file "
                             f"(format {f.attrs.get('format')!r}, expected {H5_FORMAT!r}).")
        return {str(d.attrs["path"]): d[()] for d in f["weights"].values()}


def load_converted_weights(model, path, record):
    """Assigns the weights in `path` to `model` by variable path.

    Weights whose shape differs only in the class dimension (last axis equal
    to the record's `num_classes` in the file and to the model's class count
    in the model) are left at their fresh initialisation. Returns the list
    of those variable paths. Anything else that does not match raises.
    """
    stored = read_converted_weights(path)
    model_classes = _num_classes(model)
    reinitialised, missing, wrong = [], [], []
    for variable in model.weights:
        value = stored.pop(variable.path, None)
        if value is None:
            missing.append(variable.path)
            continue
        shape = tuple(variable.shape)
        if value.shape == shape:
            variable.assign(value.astype(variable.dtype))
        elif (value.shape[:-1] == shape[:-1] and value.shape[-1] == record.num_classes
              and shape[-1] == model_classes):
            reinitialised.append(variable.path)
        else:
            wrong.append(f"{variable.path}: file {value.shape} vs model {shape}")
    if missing or wrong or stored:
        raise ValueError(
            f"{path} does not fit this model ({record.name}): missing {missing[:5]}, shape "
            f"mismatches {wrong[:5]}, unused {sorted(stored)[:5]}. Only num_classes and "
            "shape-free arguments (output_stride, upsample_logits, ...) may be overridden.")
    return reinitialised


def _num_classes(model):
    outputs = model.outputs
    return int(outputs[0].shape[-1]) if outputs else getattr(model, "num_classes", None)


__all__ = ["bundled_weights_path", "converted_path", "ensure_converted",
           "load_converted_weights", "read_converted_weights", "verify_converted",
           "write_converted_weights"]
