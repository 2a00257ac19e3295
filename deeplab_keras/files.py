"""Safe file writes for everything the package saves: atomic writes, fsync, locks, hashes.

A file written here reaches its final name only through `os.replace` after it is complete and
fsynced (the folder is fsynced after the rename), so a process killed at any moment leaves either
the old file or the new one, never half of one. Standard library only: cheap to import anywhere.

Example:

```python
from deeplab_keras import files

files.write_json_atomic("runs/exp/run.json", {"steps": 1000})
with files.atomic_path("model.weights.h5") as tmp:   # write `tmp` any way you like
    model.save_weights(tmp)
files.sha256_file("model.weights.h5")
```
"""

import contextlib
import errno
import hashlib
import json
import os
import tempfile

try:
    import fcntl
except ImportError:  # Windows: no flock; unique temp files and verification keep writes safe.
    fcntl = None

CHUNK = 1 << 20
PARTIAL_SUFFIX = ".partial"


def hash_file(path, algorithms=("sha256",)):
    """`({algorithm: hex digest}, size in bytes)` of a file, read in 1 MiB chunks."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    size = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            for h in hashers.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashers.items()}, size


def sha256_file(path):
    """The sha256 (hex) of a file.

    Example:

    >>> sha256_file("model.h5")  # doctest: +SKIP
    '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
    """
    return hash_file(path, ("sha256",))[0]["sha256"]


def md5_file(path):
    """The md5 (hex) of a file (keras.applications publishes md5 hashes).

    Example:

    >>> md5_file("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")  # doctest: +SKIP
    '4d473c1dd8becc155b73f8504c6f6626'
    """
    return hash_file(path, ("md5",))[0]["md5"]


def fsync_file(path):
    """Flushes a written file to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_dir(folder):
    """Flushes a folder's entries (a rename) to disk; a no-op where folders cannot be opened."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _default_mode():
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path, suffix=None, mode=None, hidden=True):
    """Yields a temporary path beside `path`; on success it is fsynced and renamed to `path`.

    Write the temporary file any way you like inside the block (`model.save`, h5py, a stream).
    If the block raises, the temporary file is removed and `path` is untouched. The temporary
    name is `.<name>.<random><suffix>` (default suffix: `.partial` plus the final extension,
    which writers such as `model.save_weights` insist on).

    Args:
        path: the final path; its folder is created if needed.
        suffix: the temporary file's suffix.
        mode: permissions of the final file (default: 0666 minus the umask, as `open` gives).
        hidden: start the temporary name with "." (so globs such as `train-*` skip it).

    Example:

    ```python
    with atomic_path("runs/exp/model.keras") as tmp:
        model.save(tmp)
    ```
    """
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = PARTIAL_SUFFIX + _extension(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(path, hidden), suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(folder)


def _temp_prefix(path, hidden=True):
    """`.<name>.`: temporary files and folders beside `path` (hidden from globs)."""
    return ("." if hidden else "") + os.path.basename(path) + "."


def disk_size(path):
    """Bytes of a file, or of every file under a folder."""
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, name))
                   for root, _, names in os.walk(path) for name in names)
    return os.path.getsize(path)


def _extension(path):
    name = os.path.basename(path)
    for double in (".weights.h5", ".tar.gz"):
        if name.endswith(double):
            return double
    return os.path.splitext(name)[1]


def write_bytes_atomic(path, data, mode=None):
    """Writes `data` to `path` through a fsynced temporary file and a rename."""
    with atomic_path(path, mode=mode) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_json_atomic(path, payload):
    """Writes `payload` as indented JSON (numpy scalars as floats) atomically."""
    write_bytes_atomic(path, (json.dumps(payload, indent=2, default=float) + "\n").encode())


@contextlib.contextmanager
def atomic_dir(path):
    """Yields a temporary folder beside `path`; on success it replaces `path` (a folder).

    If the block raises, the temporary folder is removed and `path` is untouched. An existing
    folder at `path` is swapped out by renames and deleted only after the new one is in place.

    Example:

    ```python
    with atomic_dir("exports/saved_model") as tmp:
        archive.write_out(tmp)
    ```
    """
    import shutil

    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=_temp_prefix(path), suffix=PARTIAL_SUFFIX)
    old = None
    try:
        yield tmp
        for root, _, names in os.walk(tmp):
            for name in names:
                fsync_file(os.path.join(root, name))
        os.chmod(tmp, 0o777 & ~_umask())
        if os.path.isdir(path):
            old = tempfile.mkdtemp(dir=parent, prefix=_temp_prefix(path), suffix=".old")
            os.replace(path, os.path.join(old, "previous"))
        os.replace(tmp, path)
        fsync_dir(parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def file_lock(path, on_wait=None):
    """An exclusive `flock` on `path` (created, mode 0600) held for the block.

    Concurrent processes that take the same lock run the block one at a time. `on_wait()` is
    called once if another process holds the lock. Where `flock` does not exist (Windows) or is
    ignored (some network file systems) the block runs unlocked; callers keep their writes safe
    with `atomic_path` and verification.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


__all__ = ["atomic_dir", "atomic_path", "disk_size", "file_lock", "fsync_dir", "fsync_file",
           "hash_file", "md5_file", "sha256_file", "write_bytes_atomic", "write_json_atomic"]
