"""Atomic, verified training checkpoints that work on TensorFlow and JAX.

A checkpoint at step N in `directory` is three files:

- `ckpt-0000000N.weights.h5`: the model weights (`model.save_weights`; loads on its own with
  `model.load_weights`, and on the other backend);
- `ckpt-0000000N.state.npz`: the optimizer variables (iterations, learning rate, moments) and
  the model's other state (random seed-generator states, e.g. of `Dropout`) in order;
- `ckpt-0000000N.json`: step, metadata (epoch, seed, data position, ...), Keras/backend
  versions, the variable paths and shapes, and the size and sha256 of both files.

Each file goes to a hidden temporary file in the same directory, is fsynced and then renamed
over its final name (`deeplab_keras.files.atomic_path`); the JSON goes last. A checkpoint is
complete only when its JSON exists and both hashes match, so a process killed at any moment
leaves the previous checkpoint as the latest one.
"""

import glob
import json
import logging
import os
import re
import time
import warnings

import keras
import numpy as np

from deeplab_keras import files
from deeplab_keras.train.distribute import is_chief

FORMAT_VERSION = 1
PREFIX = "ckpt-"
_JSON_RE = re.compile(r"^ckpt-(\d+)\.json$")
_TMP_GLOB = "." + PREFIX + "*" + files.PARTIAL_SUFFIX + "*"  # atomic_path temp files

logger = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, torn, corrupt, or does not fit the model."""


def checkpoint_prefix(directory, step):
    """`<directory>/ckpt-<step, 8 digits>`: the path without extension of a checkpoint."""
    return os.path.join(directory, f"{PREFIX}{int(step):08d}")



def _state_variables(model):
    """Model variables that are not weights: seed-generator states (Dropout, random layers)."""
    weight_ids = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


def _optimizer_variables(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return []
    return list(optimizer.variables)


def _to_numpy(variable):
    value = np.asarray(keras.ops.convert_to_numpy(variable))
    if value.dtype.kind not in "biufc":  # bfloat16 and other non-numpy dtypes
        value = value.astype("float32")
    return value


def _describe(variables):
    return [{"path": v.path, "shape": list(v.shape), "dtype": str(v.dtype)} for v in variables]


def save_checkpoint(directory, model, step, extra_state=None, max_to_keep=5, force=False):
    """Writes a complete checkpoint of `model` (weights, optimizer, random state) at `step`.

    Only the chief process writes (see `distribute.is_chief`); other workers return None
    without touching `directory` (variables are mirrored, so the chief's copy is the whole
    state). Stale temporary files from a killed save are removed, and only the newest
    `max_to_keep` complete checkpoints are kept.

    Args:
        directory: checkpoint directory (created if missing).
        model: a built Keras model; its optimizer (if compiled) is saved too.
        step: the global step (number of batches trained).
        extra_state: JSON-serialisable dict stored in the metadata (epoch, seed, data
            position, ...).
        max_to_keep: how many complete checkpoints to keep; None keeps all.
        force: write even when this process is not the chief.

    Returns:
        The checkpoint prefix (`<directory>/ckpt-<step>`), or None on a non-chief worker.

    Raises:
        CheckpointError: the model is not built, or a weight is NaN/inf (a bad state is never
            written over a good one).

    Example:

    ```python
    save_checkpoint("runs/exp1", model, step=1000, extra_state={"epoch": 3, "seed": 0})
    meta = restore_checkpoint(latest_checkpoint("runs/exp1"), model)
    ```
    """
    if not (force or is_chief()):
        return None
    if not model.built or not model.weights:
        raise CheckpointError(f"save_checkpoint: model {model.name!r} has no weights yet; "
                              "build it (call it on a batch) before saving.")
    step = int(step)
    if step < 0:
        raise ValueError(f"save_checkpoint: step must be >= 0; received {step}.")
    # An optimizer that has not trained yet has no slots; build it so every checkpoint holds
    # the full optimizer state and restores into a built optimizer.
    _ensure_optimizer_built(model)
    optimizer_vars = _optimizer_variables(model)
    state_vars = _state_variables(model)
    arrays = {}
    for i, v in enumerate(optimizer_vars):
        arrays[f"optimizer/{i}"] = _to_numpy(v)
    for i, v in enumerate(state_vars):
        arrays[f"state/{i}"] = _to_numpy(v)
    bad = [w.path for w in model.weights
           if not np.all(np.isfinite(_to_numpy(w)))]
    if bad:
        raise CheckpointError(f"save_checkpoint: refusing to write step {step} to {directory}: "
                              f"non-finite values in {bad[:5]}{' ...' if len(bad) > 5 else ''}.")

    os.makedirs(directory, exist_ok=True)
    _remove_stale_tmp(directory)
    prefix = checkpoint_prefix(directory, step)
    weights_path = prefix + ".weights.h5"
    state_path = prefix + ".state.npz"
    json_path = prefix + ".json"
    if os.path.exists(json_path):
        # Re-saving a step (e.g. after resuming from an older checkpoint): invalidate the
        # old record first so no moment exists where it describes half-replaced files.
        os.remove(json_path)

    with files.atomic_path(weights_path) as tmp:
        model.save_weights(tmp)
    with files.atomic_path(state_path) as tmp:
        _write_state(tmp, arrays)
    record = {
        "format": FORMAT_VERSION,
        "step": step,
        "time": time.time(),
        "files": {
            "weights": {"name": os.path.basename(weights_path),
                        "bytes": os.path.getsize(weights_path),
                        "sha256": files.sha256_file(weights_path)},
            "state": {"name": os.path.basename(state_path),
                      "bytes": os.path.getsize(state_path),
                      "sha256": files.sha256_file(state_path)},
        },
        "optimizer": (type(model.optimizer).__name__
                      if getattr(model, "optimizer", None) is not None else None),
        "optimizer_variables": _describe(optimizer_vars),
        "state_variables": _describe(state_vars),
        "num_weights": len(model.weights),
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "metadata": dict(extra_state or {}),
    }
    text = json.dumps(record, indent=1, default=_json_default)
    files.write_bytes_atomic(json_path, text.encode())
    if max_to_keep is not None:
        prune_checkpoints(directory, max_to_keep)
    return prefix


def _write_state(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"checkpoint metadata: {type(value).__name__} {value!r} is not "
                    "JSON-serialisable; pass numbers, strings, lists or dicts in extra_state.")


def _remove_stale_tmp(directory):
    for path in glob.glob(os.path.join(glob.escape(directory), _TMP_GLOB)):
        try:
            os.remove(path)
        except OSError:
            pass


def list_checkpoints(directory):
    """Steps of all checkpoints with a JSON record in `directory`, ascending (unverified)."""
    if not directory or not os.path.isdir(directory):
        return []
    steps = []
    for name in os.listdir(directory):
        match = _JSON_RE.match(name)
        if match:
            steps.append(int(match.group(1)))
    return sorted(steps)


def read_record(prefix):
    """Loads and verifies the JSON record of checkpoint `prefix`.

    Returns:
        The record dict (with "step", "metadata", "files", ...).

    Raises:
        CheckpointError: the JSON is missing or unreadable, a file is missing, or its size or
            sha256 does not match (a torn or corrupt checkpoint).

    Example:

    ```python
    record = read_record("runs/exp1/ckpt-00001000")
    record["metadata"]["epoch"]
    ```
    """
    prefix = _strip_extension(prefix)
    json_path = prefix + ".json"
    try:
        with open(json_path) as f:
            record = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{json_path}: no such checkpoint record (the save did not "
                              "finish, or the path is wrong).") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{json_path}: unreadable checkpoint record ({error}).") from None
    if not isinstance(record, dict) or "files" not in record or "step" not in record:
        raise CheckpointError(f"{json_path}: not a deeplab_keras checkpoint record.")
    if record.get("format", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{json_path}: format {record['format']} is newer than this "
                              f"deeplab_keras understands ({FORMAT_VERSION}); upgrade it.")
    directory = os.path.dirname(json_path)
    for kind, info in record["files"].items():
        path = os.path.join(directory, info["name"])
        if not os.path.exists(path):
            raise CheckpointError(f"{json_path}: its {kind} file {path} is missing.")
        size = os.path.getsize(path)
        if size != info["bytes"]:
            raise CheckpointError(f"{path}: {size} bytes, but the record says {info['bytes']} "
                                  "(torn or overwritten file).")
        digest = files.sha256_file(path)
        if digest != info["sha256"]:
            raise CheckpointError(f"{path}: sha256 {digest} does not match the record's "
                                  f"{info['sha256']} (corrupt file).")
    return record


def _strip_extension(path):
    path = os.fspath(path)
    for ext in (".json", ".weights.h5", ".state.npz"):
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def latest_checkpoint(directory):
    """The prefix of the newest complete, verified checkpoint in `directory`, or None.

    A newer checkpoint that is torn or corrupt (missing file, size or sha256 mismatch,
    unreadable JSON) is skipped with a warning that names it; the previous one is returned.

    Example:

    ```python
    prefix = latest_checkpoint("runs/exp1")  # e.g. "runs/exp1/ckpt-00001000"
    if prefix:
        restore_checkpoint(prefix, model)
    ```
    """
    for step in reversed(list_checkpoints(directory)):
        prefix = checkpoint_prefix(directory, step)
        try:
            read_record(prefix)
        except CheckpointError as error:
            warnings.warn(f"latest_checkpoint: skipping checkpoint {prefix}: {error}",
                          stacklevel=2)
            continue
        return prefix
    return None


def _ensure_optimizer_built(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    if not optimizer.built:
        scope = getattr(model, "distribute_strategy", None)
        if scope is not None and keras.backend.backend() == "tensorflow":
            with scope.scope():
                optimizer.build(model.trainable_variables)
        else:
            optimizer.build(model.trainable_variables)
    return optimizer


def _plan_group(variables, described, arrays, group, where):
    """Pairs `variables` with saved arrays (by path when all paths match, else by order) and
    checks count and shapes, so a mismatch raises before anything is assigned."""
    if len(variables) != len(described):
        raise CheckpointError(
            f"{where}: the checkpoint has {len(described)} {group} variables but the model has "
            f"{len(variables)}; it was written for a different model or optimizer "
            f"(saved: {[d['path'] for d in described[:4]]}..., "
            f"model: {[v.path for v in variables[:4]]}...).")
    by_path = {d["path"]: i for i, d in enumerate(described)}
    if len(by_path) == len(described) and all(v.path in by_path for v in variables):
        order = [by_path[v.path] for v in variables]
    else:  # auto-generated names differ (e.g. "conv2d_3"): same structure, same order
        order = list(range(len(variables)))
    plan = []
    for variable, i in zip(variables, order):
        value = arrays[f"{group}/{i}"]
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(f"{where}: {group} variable {variable.path} has shape "
                                  f"{tuple(variable.shape)} but the checkpoint's "
                                  f"{described[i]['path']} has {tuple(value.shape)}.")
        plan.append((variable, value))
    return plan


def _assign(plan):
    for variable, value in plan:
        variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype)))


def restore_checkpoint(path, model, restore_optimizer=True):
    """Restores weights, optimizer variables and random state from a checkpoint.

    The checkpoint is verified (sizes and sha256) before anything is assigned. The model must
    be built; a compiled model's optimizer is built here if needed, so its variables exist.

    Args:
        path: a checkpoint prefix (`.../ckpt-00000040`), one of its files, or a directory
            (its latest complete checkpoint).
        model: the model to restore into (same architecture as the saved one).
        restore_optimizer: also restore the optimizer (False: weights and random state only,
            e.g. to fine-tune with a new optimizer).

    Returns:
        The checkpoint record: `record["step"]`, `record["metadata"]` (the `extra_state` given
        to `save_checkpoint`), versions and file hashes.

    Raises:
        CheckpointError: no checkpoint, a torn or corrupt one, or one that does not fit the
            model.

    Example:

    ```python
    model.compile(optimizer="adam", loss=loss)
    record = restore_checkpoint("runs/exp1", model)
    print("resuming at step", record["step"])
    ```
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        prefix = latest_checkpoint(path)
        if prefix is None:
            raise CheckpointError(f"restore_checkpoint: no complete checkpoint in {path}.")
    else:
        prefix = _strip_extension(path)
    record = read_record(prefix)
    if not model.built or not model.weights:
        raise CheckpointError(f"restore_checkpoint: model {model.name!r} is not built; call it "
                              "on a batch (or build it) before restoring.")
    if record.get("num_weights") not in (None, len(model.weights)):
        raise CheckpointError(f"{prefix}: saved from a model with {record['num_weights']} "
                              f"weights; {model.name!r} has {len(model.weights)}.")
    directory = os.path.dirname(prefix)
    with np.load(os.path.join(directory, record["files"]["state"]["name"]),
                 allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    # Check everything before assigning anything: a mismatch leaves the model untouched.
    plan = _plan_group(_state_variables(model), record["state_variables"], arrays, "state",
                       prefix)
    optimizer = getattr(model, "optimizer", None)
    if restore_optimizer and record["optimizer_variables"]:
        if optimizer is None:
            raise CheckpointError(f"{prefix}: the checkpoint has optimizer state but the model "
                                  "is not compiled; compile it first or pass "
                                  "restore_optimizer=False.")
        _ensure_optimizer_built(model)
        plan += _plan_group(list(optimizer.variables), record["optimizer_variables"], arrays,
                            "optimizer", prefix)
    elif optimizer is not None:
        # The weights file of a compiled model also holds its optimizer, and load_weights
        # would fill a same-sized optimizer from it: keep this one's values instead.
        plan += [(v, _to_numpy(v)) for v in optimizer.variables]
    with warnings.catch_warnings():
        # Keras warns when the optimizer part of the weights file does not fit; the
        # optimizer is set from `plan` below either way.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(os.path.join(directory, record["files"]["weights"]["name"]))
    _assign(plan)
    logger.info("restored %s (step %d)", prefix, record["step"])
    return record


def prune_checkpoints(directory, max_to_keep):
    """Deletes all but the newest `max_to_keep` checkpoints (and older torn leftovers).

    The JSON record goes first, so an interrupted prune leaves incomplete, never wrong,
    checkpoints. Returns the deleted prefixes.

    Example:

    ```python
    prune_checkpoints("runs/exp1", max_to_keep=3)
    ```
    """
    if max_to_keep is None:
        return []
    if int(max_to_keep) < 1:
        raise ValueError(f"max_to_keep must be >= 1 or None; received {max_to_keep}.")
    steps = list_checkpoints(directory)
    keep = set(steps[-int(max_to_keep):])
    oldest_kept = min(keep) if keep else None
    data_steps = set()
    for name in os.listdir(directory):
        match = re.match(r"^ckpt-(\d+)\.(weights\.h5|state\.npz)$", name)
        if match:
            data_steps.add(int(match.group(1)))
    removed = []
    for step in sorted(set(steps) | data_steps):
        complete = step in steps
        if step in keep or (not complete and (oldest_kept is None or step > oldest_kept)):
            continue  # keep the newest ones, and data files a save may still be writing
        prefix = checkpoint_prefix(directory, step)
        for ext in (".json", ".weights.h5", ".state.npz"):
            try:
                os.remove(prefix + ext)
            except FileNotFoundError:
                pass
        removed.append(prefix)
    return removed
