"""A record's original public file: fetch it (verified) and hand its converter a plain file.

The sources ship weights as a Caffe release zip (`caffemodel-zip`: the member is a
`.caffemodel`), a TF1 tarball (`tf1-tarball`: the member is a checkpoint prefix), a `.pth`
(`torch-pth`) or our own converted h5 (`keras-h5`). `converter_input` unpacks what the record's
converter reads into a temporary folder (safe extraction, `archive`) and yields its path.

Example:

```python
source = original_files.fetch_source(record)
with original_files.converter_input(record, source) as path:
    report = convert.dispatch.convert_file(record.converter, model, path)
```
"""

import contextlib
import logging
import os
import tempfile

from deeplab_keras import files
from deeplab_keras.weights import archive
from deeplab_keras.weights import download

logger = logging.getLogger("deeplab_keras.weights")


def fetch_source(record, *, progress=True):
    """Local path of the record's verified source file (tried URL by URL)."""
    filename = record.urls[0].rsplit("/", 1)[1]
    path = download.fetch(record.urls[0], sha256=record.sha256, md5=record.md5,
                          size=record.size, name=record.name, filename=filename,
                          subdir="downloads", progress=progress,
                          mirrors=list(record.urls[1:]) or None)
    if record.sha256_prefix:
        actual = files.sha256_file(path)
        if not actual.startswith(record.sha256_prefix):
            raise ValueError(f"{path}: sha256 {actual} does not start with the prefix "
                             f"{record.sha256_prefix} published in {record.urls[0]}. Delete "
                             "the file and download it again.")
    return path


@contextlib.contextmanager
def converter_input(record, source):
    """Yields the path the record's converter reads: the archive member (extracted into a
    temporary folder beside `source`, removed afterwards) or `source` itself."""
    if record.file_format == "caffemodel-zip":
        members = archive.list_members(source)
        if record.member not in members:
            found = [m for m in members if m.endswith(".caffemodel")]
            raise ValueError(f"{source} ({record.name}) has no member {record.member!r}; its "
                             f".caffemodel members are {found}.")
        with tempfile.TemporaryDirectory(dir=os.path.dirname(source)) as tmp:
            local = os.path.join(tmp, os.path.basename(record.member))
            with open(local, "wb") as f:
                f.write(archive.extract_member(source, record.member))
            yield local
    elif record.file_format == "tf1-tarball":
        members = archive.list_members(source)
        prefix = _checkpoint_prefix(record, source, members)
        wanted = [m for m in members if m.startswith(prefix + ".")]
        with tempfile.TemporaryDirectory(dir=os.path.dirname(source)) as tmp:
            out = os.path.join(tmp, "extracted")
            archive.safe_extract(source, out, members=wanted)
            yield os.path.join(out, prefix)
    else:
        yield source


def _checkpoint_prefix(record, source, members):
    if record.member and record.member + ".index" in members:
        return record.member
    indexes = [m for m in members if m.endswith(".index")]
    if len(indexes) == 1:
        logger.info("%s: checkpoint %s not in %s; using its only checkpoint %s.", record.name,
                    record.member, source, indexes[0])
        return indexes[0][: -len(".index")]
    raise ValueError(f"{source} ({record.name}): expected checkpoint {record.member}.index; the "
                     f"archive has {indexes}.")


__all__ = ["converter_input", "fetch_source"]
