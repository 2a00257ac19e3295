"""Safe extraction from .zip and .tar(.gz/.bz2/.xz) archives of downloaded weights.

Only regular files and folders are extracted, and only their contents are copied (never
`tarfile.extract`, so no links, devices, owners or modes come from the archive). Every member
is checked before anything is written: absolute paths, `..` components, symbolic and hard
links, device and FIFO entries, duplicate names and decompression bombs (a cap on the total
uncompressed size and on the uncompressed/compressed ratio) are refused with an error naming
the archive and the member. Files are extracted into a temporary folder next to the
destination, which is renamed into place only when everything is written.

Example:

```python
from deeplab_keras.convert import archive

folder = archive.safe_extract("deeplabv3_pascal_trainval_2018_01_04.tar.gz", "/tmp/deeplab")
index = archive.extract_member("deeplabv3_pascal_trainval_2018_01_04.tar.gz",
                               "deeplabv3_pascal_trainval/model.ckpt.index")
```
"""

import contextlib
import dataclasses
import difflib
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile

__all__ = [
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_TOTAL_BYTES",
    "UnsafeArchiveError",
    "extract_member",
    "list_members",
    "safe_extract",
]

DEFAULT_MAX_TOTAL_BYTES = 16 << 30  # 16 GiB uncompressed
DEFAULT_MAX_RATIO = 200.0  # uncompressed / compressed; checkpoints compress about 1.1:1
_RATIO_FLOOR_BYTES = 1 << 20  # below 1 MiB uncompressed, the ratio is not checked
_CHUNK = 1 << 20


class UnsafeArchiveError(ValueError):
    """An archive member is unsafe (path escape, link, device) or the archive is a bomb."""


@dataclasses.dataclass(frozen=True)
class _Member:
    name: str  # normalised: "a/b/c", no leading "./"
    raw_name: str
    is_dir: bool
    size: int
    compressed_size: int  # zip only; None for tar
    handle: object


def _archive_kind(path):
    lower = path.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise UnsafeArchiveError(f"{path} is neither a zip nor a tar archive.")


def _normalise(archive_path, raw_name):
    """Returns the member's relative path ("a/b"), "" for the root, or raises."""
    if "\x00" in raw_name:
        raise UnsafeArchiveError(f"{archive_path}: member {raw_name!r} has a NUL byte in its name.")
    name = raw_name.replace("\\", "/")
    if name.startswith("/") or (len(name) >= 2 and name[1] == ":" and name[0].isalpha()):
        raise UnsafeArchiveError(f"{archive_path}: member {raw_name!r} has an absolute path; "
                                 f"refusing to extract.")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive_path}: member {raw_name!r} has a '..' component that "
                                 f"would write outside the destination; refusing to extract.")
    return "/".join(parts)


def _zip_members(archive_path, zf):
    members = []
    for info in zf.infolist():
        name = _normalise(archive_path, info.filename)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise UnsafeArchiveError(f"{archive_path}: member {info.filename!r} is a symbolic "
                                     f"link; refusing to extract links.")
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{archive_path}: member {info.filename!r} is a device, FIFO "
                                     f"or socket (mode {oct(mode)}); refusing to extract.")
        if info.flag_bits & 0x1:
            raise UnsafeArchiveError(f"{archive_path}: member {info.filename!r} is encrypted.")
        is_dir = info.is_dir() or kind == stat.S_IFDIR
        members.append(_Member(name, info.filename, is_dir, 0 if is_dir else info.file_size,
                               info.compress_size, info))
    return members


def _tar_members(archive_path, tf):
    members = []
    for info in tf.getmembers():
        name = _normalise(archive_path, info.name)
        if info.issym() or info.islnk():
            raise UnsafeArchiveError(f"{archive_path}: member {info.name!r} is a "
                                     f"{'symbolic' if info.issym() else 'hard'} link to "
                                     f"{info.linkname!r}; refusing to extract links.")
        if info.ischr() or info.isblk() or info.isfifo() or info.isdev():
            raise UnsafeArchiveError(f"{archive_path}: member {info.name!r} is a device or FIFO; "
                                     f"refusing to extract.")
        if not (info.isreg() or info.isdir()):
            raise UnsafeArchiveError(f"{archive_path}: member {info.name!r} has unsupported tar "
                                     f"type {info.type!r}; refusing to extract.")
        members.append(_Member(name, info.name, info.isdir(), 0 if info.isdir() else info.size,
                               None, info))
    return members


@contextlib.contextmanager
def _open(archive_path):
    if not os.path.isfile(archive_path):
        raise FileNotFoundError(f"Archive {archive_path} does not exist.")
    kind = _archive_kind(archive_path)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive_path) as zf:
                yield kind, zf, _zip_members(archive_path, zf)
        else:
            with tarfile.open(archive_path, "r:*") as tf:
                yield kind, tf, _tar_members(archive_path, tf)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise UnsafeArchiveError(f"{archive_path} is corrupt or truncated: {e}") from e


def _select(archive_path, members, wanted):
    if wanted is None:
        return members
    by_name = {m.name: m for m in members}
    chosen = []
    for raw in wanted:
        name = _normalise(archive_path, raw)
        if name not in by_name:
            raise KeyError(_missing_message(archive_path, raw, by_name))
        chosen.append(by_name[name])
    return chosen


def _missing_message(archive_path, raw, by_name):
    close = difflib.get_close_matches(raw, list(by_name), n=5, cutoff=0.4)
    listing = close or sorted(by_name)[:10]
    return (f"{archive_path} has no member {raw!r}; "
            f"{'closest' if close else 'first'} names: {listing}.")


def _check_limits(archive_path, members, max_total_bytes, max_ratio):
    seen = set()
    total = 0
    for m in members:
        if m.name in seen and not m.is_dir:
            raise UnsafeArchiveError(f"{archive_path}: member {m.raw_name!r} appears twice; "
                                     f"refusing an archive whose later member would overwrite "
                                     f"an earlier one.")
        seen.add(m.name)
        total += m.size
        if total > max_total_bytes:
            raise UnsafeArchiveError(
                f"{archive_path}: extracting would write more than max_total_bytes="
                f"{max_total_bytes} bytes (reached at member {m.raw_name!r}); possible "
                f"decompression bomb. Raise max_total_bytes if the archive is trusted.")
        if (m.compressed_size and m.size > _RATIO_FLOOR_BYTES
                and m.size / m.compressed_size > max_ratio):
            raise UnsafeArchiveError(
                f"{archive_path}: member {m.raw_name!r} expands {m.size / m.compressed_size:.0f}x "
                f"({m.compressed_size} -> {m.size} bytes), above max_ratio={max_ratio}; "
                f"possible decompression bomb.")
    compressed = max(os.path.getsize(archive_path), 1)
    if total > _RATIO_FLOOR_BYTES and total / compressed > max_ratio:
        biggest = max(members, key=lambda m: m.size)
        raise UnsafeArchiveError(
            f"{archive_path}: {total} uncompressed bytes from a {compressed}-byte archive "
            f"({total / compressed:.0f}x, largest member {biggest.raw_name!r}) is above "
            f"max_ratio={max_ratio}; possible decompression bomb.")
    return total


def _open_member(kind, handle, member):
    if kind == "zip":
        return handle.open(member.handle)
    stream = handle.extractfile(member.handle)
    if stream is None:
        raise UnsafeArchiveError(f"cannot read member {member.raw_name!r}.")
    return stream


def _copy(archive_path, src, dst, member, budget):
    """Copies at most the member's declared size (and the remaining budget)."""
    written = 0
    while True:
        chunk = src.read(_CHUNK)
        if not chunk:
            break
        written += len(chunk)
        if written > member.size or written > budget:
            raise UnsafeArchiveError(f"{archive_path}: member {member.raw_name!r} holds more data "
                                     f"than its header declares ({member.size} bytes); refusing.")
        dst.write(chunk)
    return written


def safe_extract(archive_path, dest_dir, members=None, *, max_total_bytes=DEFAULT_MAX_TOTAL_BYTES,
                 max_ratio=DEFAULT_MAX_RATIO, overwrite=False):
    """Extracts a zip or tar archive safely into `dest_dir`; returns `dest_dir`.

    Args:
        archive_path: a `.zip`, `.tar`, `.tar.gz`/`.tgz`, `.tar.bz2` or `.tar.xz` file.
        dest_dir: the folder to create. It must not exist (or be empty) unless `overwrite`.
        members: names of the members to extract (default: all).
        max_total_bytes: refuse if the extracted files would total more than this.
        max_ratio: refuse if uncompressed/compressed size exceeds this (checked when more
            than 1 MiB would be written).
        overwrite: replace an existing non-empty `dest_dir`.

    Raises:
        UnsafeArchiveError: an absolute path, a `..` component, a link, a device/FIFO entry,
            a duplicate name, a bomb, or a corrupt archive; the message names the archive and
            the member. Nothing is left at `dest_dir` (nor in a temporary folder).
        KeyError: a name in `members` is not in the archive (the closest names are listed).
        FileExistsError: `dest_dir` exists and is not empty, and `overwrite` is False.

    Example:

    ```python
    folder = safe_extract("prototxt_and_model.zip", "/tmp/deeplab_v2",
                          members=["train_iter_20000.caffemodel"])
    ```
    """
    archive_path = os.fspath(archive_path)
    dest_dir = os.path.abspath(os.fspath(dest_dir))
    if os.path.lexists(dest_dir) and not overwrite:
        if not os.path.isdir(dest_dir) or os.listdir(dest_dir):
            raise FileExistsError(f"{dest_dir} already exists; delete it or pass overwrite=True "
                                  f"to replace it with the contents of {archive_path}.")
    parent = os.path.dirname(dest_dir)
    os.makedirs(parent, exist_ok=True)
    with _open(archive_path) as (kind, handle, all_members):
        chosen = _select(archive_path, all_members, members)
        budget = _check_limits(archive_path, chosen, max_total_bytes, max_ratio)
        tmp = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(dest_dir) + ".extract-")
        try:
            _extract_into(archive_path, kind, handle, chosen, tmp, budget)
            _publish(tmp, dest_dir, overwrite)
            tmp = None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


def _extract_into(archive_path, kind, handle, chosen, tmp, budget):
    root = os.path.realpath(tmp)
    os.chmod(tmp, 0o755)
    for member in chosen:
        if not member.name:
            continue
        target = os.path.join(root, *member.name.split("/"))
        if os.path.commonpath([root, os.path.realpath(os.path.dirname(target))]) != root:
            raise UnsafeArchiveError(f"{archive_path}: member {member.raw_name!r} resolves "
                                     f"outside the destination; refusing.")
        if member.is_dir:
            os.makedirs(target, mode=0o755, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(target, flags, 0o644)
        except (FileExistsError, IsADirectoryError, NotADirectoryError) as e:
            raise UnsafeArchiveError(f"{archive_path}: member {member.raw_name!r} collides with "
                                     f"another member ({e}); refusing.") from e
        with os.fdopen(fd, "wb") as dst, _open_member(kind, handle, member) as src:
            budget -= _copy(archive_path, src, dst, member, budget)


def _publish(tmp, dest_dir, overwrite):
    old = None
    if os.path.lexists(dest_dir):
        if os.path.isdir(dest_dir) and not os.path.islink(dest_dir) and not os.listdir(dest_dir):
            os.rmdir(dest_dir)
        elif overwrite:
            old = tempfile.mkdtemp(dir=os.path.dirname(dest_dir),
                                   prefix="." + os.path.basename(dest_dir) + ".old-")
            os.rmdir(old)
            os.rename(dest_dir, old)
        else:
            raise FileExistsError(f"{dest_dir} appeared while extracting; delete it or pass "
                                  f"overwrite=True.")
    os.rename(tmp, dest_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if os.path.isdir(old) else os.unlink(old)


def list_members(archive_path):
    """Names of the regular files in an archive (normalised, `/`-separated).

    Raises `UnsafeArchiveError` on an unsafe member, as `safe_extract` would.

    Example:

    >>> list_members("prototxt_and_model.zip")  # doctest: +SKIP
    ['test.prototxt', 'train_iter_20000.caffemodel']
    """
    with _open(archive_path) as (_, _, members):
        return [m.name for m in members if not m.is_dir]


def extract_member(archive_path, member_name, *, max_bytes=4 << 30, max_ratio=DEFAULT_MAX_RATIO):
    """Returns the bytes of one regular file in a zip or tar archive, without extracting.

    The archive is checked as in `safe_extract` (no links, devices or unsafe names); the
    member must be a regular file of at most `max_bytes` bytes, expanding at most `max_ratio`
    times.

    Raises:
        KeyError: no such member (the message lists the closest names).
        UnsafeArchiveError: the archive or the member is unsafe or too large.

    Example:

    ```python
    data = extract_member("deeplabv3_mnv2_pascal_trainval_2018_01_29.tar.gz",
                          "deeplabv3_mnv2_pascal_trainval/model.ckpt-30000.index")
    ```
    """
    archive_path = os.fspath(archive_path)
    with _open(archive_path) as (kind, handle, members):
        (member,) = _select(archive_path, members, [member_name])
        if member.is_dir:
            raise UnsafeArchiveError(f"{archive_path}: member {member_name!r} is a folder, not a "
                                     f"file.")
        if member.size > max_bytes:
            raise UnsafeArchiveError(f"{archive_path}: member {member_name!r} is {member.size} "
                                     f"bytes, above max_bytes={max_bytes}.")
        _check_limits(archive_path, [member], max_bytes, max_ratio)
        out = io.BytesIO()
        with _open_member(kind, handle, member) as src:
            _copy(archive_path, src, out, member, max_bytes)
        if out.tell() != member.size:
            raise UnsafeArchiveError(f"{archive_path}: member {member_name!r} is truncated: "
                                     f"{out.tell()} of {member.size} bytes.")
        return out.getvalue()
