"""A record's original public file: fetch it (verified) and hand its converter a plain file.

The sources ship weights as a Caffe release zip (`caffemodel-zip`: the member is a
`.caffemodel`), a bare `.caffemodel`, a TF1 tarball (`tf1-tarball`: the member is a checkpoint
prefix), a `.pth` (`torch-pth`) or our own converted h5 (`keras-h5`). `converter_input` unpacks
what the record's converter reads into a temporary folder (`convert.source_files`) and yields
its path.

Example:

```python
source = original_files.fetch_source(record).path
with original_files.converter_input(record, source) as path:
    report = convert.dispatch.convert_file(record.converter, model, path)
```
"""

import contextlib
import os

from deeplab_keras.convert import source_files
from deeplab_keras.weights import download
from deeplab_keras.weights import integrity

DOWNLOADS = "downloads"


def file_name(record):
    """The source's own file name (the last part of its first URL)."""
    return record.urls[0].rsplit("/", 1)[1]


def mirror_name(record):
    """Where a `DEEPLAB_KERAS_MIRROR` folder (or URL prefix) holds the record's source file:
    `<record name>/<file name>`, unique per record even where sources share a file name (the
    three DeepLab v2 zips are all `prototxt_and_model.zip`)."""
    return f"{record.name}/{file_name(record)}"


def fetch_source(record, *, progress=True, trust=True):
    """The record's verified source file, downloaded once into
    `<cache>/downloads/<record name>/<file name>` (tried URL by URL); a `FetchResult`.

    `trust=False` leaves a file with no published hash untrusted (see `download.fetch_info`)
    until the caller calls `download.trust(result, record.name)`.
    """
    result = download.fetch_info(
        record.urls[0], sha256=record.sha256, md5=record.md5, size=record.size,
        name=record.name, filename=file_name(record), subdir=f"{DOWNLOADS}/{record.name}",
        progress=progress, mirrors=list(record.urls[1:]) or None,
        mirror_names=(mirror_name(record),), trust=trust)
    if record.sha256_prefix and not result.sha256.startswith(record.sha256_prefix):
        moved = integrity.move_aside(result.path, "sha256 prefix mismatch")
        raise ValueError(
            f"{result.path}: sha256 {result.sha256} does not start with the prefix "
            f"{record.sha256_prefix} published in {record.urls[0]}; it was moved aside to "
            f"{moved} and nothing was trusted. Retry to download it again.")
    return result


@contextlib.contextmanager
def converter_input(record, source):
    """Yields the path the record's converter reads: the archive member (extracted into a
    temporary folder beside `source`, removed afterwards) or `source` itself."""
    workdir = os.path.dirname(source)
    if record.file_format == "caffemodel-zip":
        with source_files.member_file(source, record.member, ".caffemodel", workdir) as path:
            yield path
    elif record.file_format == "tf1-tarball":
        with source_files.checkpoint_prefix(source, record.member, workdir) as path:
            yield path
    else:
        yield source


__all__ = ["converter_input", "fetch_source", "file_name", "mirror_name"]
