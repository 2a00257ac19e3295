"""Converters read weights as they were downloaded: a bare file, or one member of a `.zip` or
`.tar(.gz)` (a DeepLab Caffe release zip, a TF research/deeplab tarball), extracted safely into
a temporary folder (`archive`) for the duration of the conversion.

Example:

```python
with source_files.member_file("prototxt_and_model.zip", "train_iter_20000.caffemodel",
                              suffix=".caffemodel") as path:
    layers = caffe_files.read_caffemodel_layers(path)
```
"""

import contextlib
import os
import tarfile
import tempfile
import zipfile

from deeplab_keras.convert import archive


def is_archive(path):
    """True for a `.zip` or `.tar(.gz/.bz2/.xz)` file (by content, not name)."""
    return os.path.isfile(path) and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))


def _choose(path, candidates, member, what):
    if member is not None:
        if member not in candidates:
            raise ValueError(f"{path} has no {what} {member!r}; its {what}s are "
                             f"{sorted(candidates)}.")
        return member
    if len(candidates) == 1:
        return candidates[0]
    raise ValueError(f"{path} holds {len(candidates)} {what}s {sorted(candidates)}; pass "
                     f"member= to say which one.")


@contextlib.contextmanager
def member_file(path, member=None, suffix="", workdir=None):
    """Yields a local path of `member` of the archive `path` (or of its only file ending in
    `suffix`), extracted into a temporary folder; a plain file yields itself."""
    path = os.fspath(path)
    if not is_archive(path):
        yield path
        return
    members = [m for m in archive.list_members(path) if m.endswith(suffix)]
    chosen = _choose(path, members, member, f"{suffix or 'file'} member")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        local = os.path.join(tmp, os.path.basename(chosen))
        with open(local, "wb") as f:
            f.write(archive.extract_member(path, chosen))
        yield local


@contextlib.contextmanager
def checkpoint_prefix(path, member=None, workdir=None):
    """Yields a TF1 checkpoint prefix: `path` itself, or the checkpoint `member` (a prefix such
    as `deeplabv3_pascal_train_aug/model.ckpt`, or the archive's only one) extracted from the
    tarball `path` with its `.index` and `.data-*` files."""
    path = os.fspath(path)
    if not is_archive(path):
        yield path
        return
    members = archive.list_members(path)
    prefixes = [m[: -len(".index")] for m in members if m.endswith(".index")]
    chosen = _choose(path, prefixes, member, "checkpoint")
    wanted = [m for m in members if m.startswith(chosen + ".")]
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        out = os.path.join(tmp, "extracted")
        archive.safe_extract(path, out, members=wanted)
        yield os.path.join(out, chosen)


__all__ = ["checkpoint_prefix", "is_archive", "member_file"]
