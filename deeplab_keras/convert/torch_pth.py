"""Read PyTorch `.pth`/`.pt` state dicts without torch and without running pickled code.

Both formats `torch.save` writes are read:

- the zip format (torch >= 1.6): `<archive>/data.pkl` (a pickle of the state dict whose
  tensors point at storages through persistent ids), `<archive>/data/<key>` (the raw bytes of
  each storage), `<archive>/byteorder` and `<archive>/version`;
- the legacy format (`_use_new_zipfile_serialization=False`, and every file saved before torch
  1.6, such as torchvision's DeepLabV3-ResNet101): five pickles in a row (magic number,
  protocol version 1001, system info, the state dict, the sorted storage keys), then each
  storage as an int64 element count and its raw bytes, in key order.

A pickle can call any importable function, so every pickle is read with an allow-list:
`collections.OrderedDict`, torch's tensor/parameter rebuild functions and the
`torch.*Storage` type names. Anything else (`os.system`, `builtins.eval`, ...) raises
`UnsafePickleError` before it can run.
"""

import _compat_pickle
import collections
import io
import os
import pickle
import zipfile

import numpy as np

from deeplab_keras.convert.common import ConversionError


class TorchCheckpointError(ConversionError):
    """A `.pth` file is missing, truncated, corrupt or not a state dict."""


class UnsafePickleError(TorchCheckpointError, pickle.UnpicklingError):
    """A `.pth` file's pickle references a global outside the allow-list."""


# torch storage type name -> numpy dtype (bfloat16 has none: read as uint16, widened below).
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "ComplexFloatStorage": np.complex64,
    "ComplexDoubleStorage": np.complex128,
}
# Keys under which training scripts commonly nest the state dict.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "model_state")


class _NoSetState:
    """Refuses pickle's BUILD opcode, so a pickle cannot rewrite the reader's own objects."""

    def __setstate__(self, state):
        raise UnsafePickleError(f"the pickle tries to set the state of a {type(self).__name__}")


class _StorageType(_NoSetState):
    """Stands in for `torch.FloatStorage` & co. while unpickling."""

    def __init__(self, name):
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage(_NoSetState):
    """A storage read from the archive: a flat numpy array of its elements."""

    def __init__(self, array, storage_type, key):
        self.array, self.storage_type, self.key = array, storage_type, key


class _TensorArray(np.ndarray):
    """Marks arrays rebuilt from torch tensors (as opposed to other pickled data)."""

    __setstate__ = _NoSetState.__setstate__


class _PendingTensor(_NoSetState):
    """A tensor of the legacy format, whose storage bytes come after the pickle."""

    def __init__(self, storage, storage_offset, size, stride):
        self.args = (storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """`torch._utils._rebuild_tensor_v2` on numpy: a bounds-checked strided copy."""
    if not isinstance(storage, _Storage):
        raise TorchCheckpointError(f"tensor rebuilt from {type(storage).__name__}, not a storage")
    if storage.array is None:
        return _PendingTensor(storage, storage_offset, size, stride)
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(storage_offset)
    flat = storage.array
    if not (isinstance(flat, np.ndarray) and flat.ndim == 1 and flat.flags.c_contiguous):
        raise TorchCheckpointError(f"storage {storage.key}: not a flat buffer")
    if len(size) != len(stride) or min(size + stride + (offset,), default=0) < 0:
        raise TorchCheckpointError(
            f"storage {storage.key}: invalid tensor layout size={size} stride={stride} "
            f"offset={offset}")
    if 0 in size:
        out = np.zeros(size, flat.dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise TorchCheckpointError(
                f"storage {storage.key} holds {flat.size} elements but a tensor of size "
                f"{size} (stride {stride}, offset {offset}) needs {last + 1}; the file is "
                "truncated or corrupt")
        base = flat[offset:]
        out = np.lib.stride_tricks.as_strided(
            base, shape=size, strides=tuple(s * flat.itemsize for s in stride), writeable=False)
        out = np.array(out, copy=True)
    if storage.storage_type.name == "BFloat16Storage":
        out = (out.astype(np.uint32) << 16).view(np.float32)  # exact widening to float32
    return out.view(_TensorArray)


def _materialize(obj):
    """Replaces the pending tensors of a legacy pickle once every storage is read."""
    if isinstance(obj, _PendingTensor):
        return _rebuild_tensor(*obj.args)
    if isinstance(obj, dict):
        return type(obj)((k, _materialize(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_ignored):
    """`torch._utils._rebuild_parameter`: a Parameter is just its data here."""
    return data


_ALLOWED_FUNCTIONS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a state dict allowing only the globals it needs (`data`: bytes or a file)."""

    def __init__(self, data, path, load_storage=None):
        super().__init__(io.BytesIO(data) if isinstance(data, bytes) else data)
        self._path, self._load_storage = path, load_storage

    def find_class(self, module, name):
        # Protocol-2 pickles spell Python 3 modules the Python 2 way (`__builtin__`).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) in _ALLOWED_FUNCTIONS:
            return _ALLOWED_FUNCTIONS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(
            f"{self._path}: refusing to load the global `{module}.{name}` referenced by the "
            "pickle (only state-dict tensors are allowed; this could run arbitrary code). If "
            "you trust the file, load it with torch and pass {name: tensor.numpy()} instead.")

    def persistent_load(self, pid):
        # zip format: ("storage", type, key, location, numel); legacy: + view metadata
        if not (self._load_storage is not None and isinstance(pid, tuple)
                and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(f"{self._path}: unsupported persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        view = pid[5] if len(pid) == 6 else None
        return self._load_storage(storage_type, key, numel, view)


def load_torch_state_dict(path, use_torch=False):
    """Reads a PyTorch state dict (`torch.save` zip format) into numpy arrays.

    No torch needed and no pickled code run: the pickle is read with an
    allow-list (see module docstring). A `{"state_dict": ...}` or
    `{"model": ...}` checkpoint wrapper is unwrapped. bfloat16 tensors are
    widened exactly to float32 (numpy has no bfloat16); other dtypes are kept.

    Args:
        path: a `.pth`/`.pt` file written by `torch.save`, in the zip format or
            the legacy (pre-1.6) pickle format.
        use_torch: read with `torch.load(weights_only=True)` instead (needs
            torch; for exotic files the allow-list does not cover).

    Returns:
        `OrderedDict{name: np.ndarray}` in the file's order.

    Raises:
        UnsafePickleError: the pickle references a forbidden global.
        TorchCheckpointError: missing, truncated or corrupt file, or not a
            state dict of tensors.

    Example:

    ```python
    state_dict = load_torch_state_dict("deeplabv3_resnet50_coco-cd0a2569.pth")
    state_dict["classifier.4.weight"].shape  # (21, 256, 1, 1)
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TorchCheckpointError(f"PyTorch checkpoint {path!r} does not exist or is not a file.")
    if use_torch:
        obj = _load_with_torch(path)
    elif zipfile.is_zipfile(path):
        obj = _load_zip(path)
    else:
        obj = _load_legacy(path)
    return _as_state_dict(obj, path)


def _load_with_torch(path):
    try:
        import torch
    except ImportError as e:
        raise ImportError("load_torch_state_dict(use_torch=True) needs PyTorch; install it "
                          "or use the default torch-free reader (use_torch=False).") from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        raise TorchCheckpointError(f"torch.load could not read {path!r}: {e}") from e

    def to_numpy(value):
        if isinstance(value, torch.Tensor):
            value = value.detach()
            if value.dtype == torch.bfloat16:
                value = value.float()
            return value.numpy().copy().view(_TensorArray)
        if isinstance(value, dict):
            return collections.OrderedDict((k, to_numpy(v)) for k, v in value.items())
        return value

    return to_numpy(obj)


def _load_zip(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return _unpickle_archive(archive, path)
    except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as e:
        raise TorchCheckpointError(
            f"{path!r} is a damaged torch archive ({e}); download it again.") from e


def _unpickle_archive(archive, path):
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise TorchCheckpointError(
            f"{path!r}: expected one '<archive>/data.pkl' in the zip, found {pickles or 'none'} "
            "(a TorchScript or non-torch zip?).")
    root = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if root + "byteorder" in names:
        byteorder = archive.read(root + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise TorchCheckpointError(f"{path!r}: unknown byteorder {byteorder!r}")
    storages = {}

    def load_storage(storage_type, key, numel, view=None):
        if view is not None:
            raise TorchCheckpointError(f"{path!r}: storage views are not used by the zip format")
        if key in storages:
            return storages[key]
        member = root + "data/" + key
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise TorchCheckpointError(f"{path!r}: storage {member!r} is missing from the "
                                       "archive (truncated or corrupt file)") from None
        nbytes = numel * storage_type.dtype.itemsize
        if numel < 0 or info.file_size < nbytes:
            raise TorchCheckpointError(
                f"{path!r}: storage {member!r} has {info.file_size} bytes but {numel} "
                f"{storage_type} elements need {nbytes} (truncated or corrupt file)")
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > 1000 * max(
                info.compress_size, 1):
            raise TorchCheckpointError(f"{path!r}: {member!r} decompresses {info.file_size} "
                                       f"bytes from {info.compress_size}; refusing (zip bomb?)")
        with archive.open(info) as f:
            data = f.read(nbytes)
        dtype = storage_type.dtype.newbyteorder("<" if byteorder == "little" else ">")
        array = np.frombuffer(data, dtype=dtype, count=numel).astype(
            storage_type.dtype.newbyteorder("="), copy=False)
        storages[key] = _Storage(array, storage_type, key)
        return storages[key]

    data = archive.read(pickles[0])
    try:
        return _RestrictedUnpickler(data, path, load_storage).load()
    except UnsafePickleError as e:
        if path in str(e):
            raise
        raise UnsafePickleError(f"{path}: {e}") from e
    except TorchCheckpointError:
        raise
    except Exception as e:  # malformed pickle: EOFError, UnpicklingError, TypeError, ...
        raise TorchCheckpointError(f"{path!r}: cannot read {pickles[0]!r}: {e}") from e


LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


def _load_legacy(path):
    """The legacy (pre-1.6) format, read pickle by pickle with the allow-list (module doc)."""
    with open(path, "rb") as f:
        if f.read(1) != b"\x80":
            raise TorchCheckpointError(f"{path!r} is neither a torch zip archive nor a legacy "
                                       "torch pickle; the file is truncated or not a torch "
                                       "checkpoint.")
        f.seek(0)
        try:
            magic = _RestrictedUnpickler(f, path).load()
            protocol = _RestrictedUnpickler(f, path).load()
            sys_info = _RestrictedUnpickler(f, path).load()
        except TorchCheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - malformed header
            raise TorchCheckpointError(f"{path!r}: unreadable legacy torch header ({e}).") from e
        if magic != LEGACY_MAGIC_NUMBER or protocol != LEGACY_PROTOCOL_VERSION:
            raise TorchCheckpointError(
                f"{path!r}: not a legacy torch file (magic {magic!r}, protocol {protocol!r}; "
                f"expected {LEGACY_MAGIC_NUMBER:#x} and {LEGACY_PROTOCOL_VERSION}).")
        order = "<" if not isinstance(sys_info, dict) or sys_info.get("little_endian",
                                                                       True) else ">"
        storages, views = {}, []

        def load_storage(storage_type, key, numel, view):
            if numel < 0:
                raise TorchCheckpointError(f"{path!r}: storage {key} has {numel} elements")
            root = storages.setdefault(key, _Storage(None, storage_type, key))
            if root.storage_type.name != storage_type.name:
                raise TorchCheckpointError(f"{path!r}: storage {key} has two types")
            root.numel = numel
            if view is None:
                return root
            view_key, offset, view_size = view
            piece = _Storage(None, storage_type, str(view_key))
            views.append((piece, root, int(offset), int(view_size)))
            return piece

        try:
            obj = _RestrictedUnpickler(f, path, load_storage).load()
            keys = _RestrictedUnpickler(f, path).load()
        except TorchCheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - malformed pickle
            raise TorchCheckpointError(f"{path!r}: cannot read the legacy pickle: {e}") from e
        if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
            raise TorchCheckpointError(f"{path!r}: the storage key list does not match the "
                                       "tensors (truncated or corrupt file).")
        for key in keys:
            storage = storages[str(key)]
            head = f.read(8)
            if len(head) < 8:
                raise TorchCheckpointError(f"{path!r}: truncated before storage {key}.")
            numel = int.from_bytes(head, "little" if order == "<" else "big", signed=True)
            dtype = storage.storage_type.dtype.newbyteorder(order)
            data = f.read(numel * dtype.itemsize) if numel >= 0 else b""
            if numel != storage.numel or len(data) != numel * dtype.itemsize:
                raise TorchCheckpointError(
                    f"{path!r}: storage {key} should hold {storage.numel} elements; the file "
                    f"has {numel} and {len(data)} bytes (truncated or corrupt file).")
            storage.array = np.frombuffer(data, dtype=dtype).astype(
                storage.storage_type.dtype.newbyteorder("="), copy=False)
        for piece, root, offset, size in views:
            if offset < 0 or offset + size > root.array.size:
                raise TorchCheckpointError(f"{path!r}: storage view outside its storage")
            piece.array = root.array[offset:offset + size]
    return _materialize(obj)


def _is_state_dict(obj):
    return isinstance(obj, dict) and obj and all(
        isinstance(k, str) and isinstance(v, _TensorArray) for k, v in obj.items())


def _as_state_dict(obj, path):
    if isinstance(obj, dict) and not _is_state_dict(obj):
        for key in WRAPPER_KEYS:
            if _is_state_dict(obj.get(key)):
                obj = obj[key]
                break
    if not _is_state_dict(obj):
        keys = list(obj)[:8] if isinstance(obj, dict) else None
        raise TorchCheckpointError(
            f"{path!r} holds a {type(obj).__name__}"
            + (f" with keys {keys}" if keys is not None else "")
            + ", not a state dict of tensors (nor one under "
            + ", ".join(repr(k) for k in WRAPPER_KEYS) + ").")
    return collections.OrderedDict((k, np.asarray(v).view(np.ndarray)) for k, v in obj.items())


def from_torchvision_file(model, path, use_torch=False):
    """Loads a torchvision DeepLabV3-ResNet `.pth` file into `model`.

    `load_torch_state_dict` (no torch, no pickled code run) followed by
    `deeplab_keras.convert.from_torchvision`; see that function for the
    target architecture (V1.5 ResNet backbone, `head="torchvision"`).

    Args:
        model: the `deeplab_keras.models.DeepLabV3` to fill.
        path: the `.pth` as downloaded, in torch's zip or legacy (pre-1.6) format, e.g.
            `deeplabv3_resnet101_coco-586e9e4e.pth`.
        use_torch: read the file with `torch.load(weights_only=True)`.

    Returns:
        A `ConversionReport` (aux head and BN counters listed as skipped).

    Example:

    ```python
    model = deeplab_keras.models.DeepLabV3(backbone="resnet50_v1_5", output_stride=8,
                                           head="torchvision", num_classes=21)
    report = from_torchvision_file(model, "deeplabv3_resnet50_coco-cd0a2569.pth")
    ```
    """
    from deeplab_keras.convert.torchvision import from_torchvision

    return from_torchvision(model, load_torch_state_dict(path, use_torch=use_torch))
