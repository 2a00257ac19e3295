"""Is this file the one we expect? Size and hash checks, `.sha256` sidecars, moving bad files
aside. Used by downloads, the converted-weights cache and the bundled weights.

A sidecar is `<file>.sha256` holding `"<sha256>  <file name>"` (the `sha256sum` format): the
hash recorded when the file was first trusted (a download with no published hash, a conversion)
and checked on every later use.

Example:

```python
from deeplab_keras.weights import integrity

integrity.write_sidecar("model.h5", files.sha256_file("model.h5"))
integrity.verify_file("model.h5", sha256=integrity.read_sidecar("model.h5.sha256"))
```
"""

import logging
import os
import time

from deeplab_keras import files
from deeplab_keras.weights.errors import IntegrityError

logger = logging.getLogger("deeplab_keras.weights")

SIDECAR_SUFFIX = ".sha256"


def normalise_hex(value, length, what):
    """`value` as lower-case hex of `length` digits (None stays None); ValueError otherwise."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{what} must be {length} hex digits, got {value!r}.")
    return text


def verify_file(path, sha256=None, size=None, md5=None):
    """Checks a file's size, sha256 and md5 (those given); returns its sha256.

    Raises:
        FileNotFoundError: `path` does not exist.
        IntegrityError: a value differs; the message names the file, the expected and the
            actual value.

    Example:

    >>> verify_file("model.h5", sha256="9f86d0...", size=4)  # doctest: +SKIP
    '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
    """
    sha256 = normalise_hex(sha256, 64, "sha256")
    md5 = normalise_hex(md5, 32, "md5")
    actual_size = os.path.getsize(path)
    if size is not None and actual_size != int(size):
        raise IntegrityError(f"{path}: size is {actual_size} bytes, expected {int(size)} bytes "
                             f"(sha256 expected {sha256 or 'unknown'}).")
    digests, _ = files.hash_file(path, ("sha256", "md5") if md5 else ("sha256",))
    if sha256 is not None and digests["sha256"] != sha256:
        raise IntegrityError(f"{path}: sha256 mismatch: expected {sha256}, actual "
                             f"{digests['sha256']} ({actual_size} bytes).")
    if md5 is not None and digests["md5"] != md5:
        raise IntegrityError(f"{path}: md5 mismatch: expected {md5}, actual {digests['md5']} "
                             f"({actual_size} bytes).")
    return digests["sha256"]


def sidecar_of(path):
    """The sidecar path of `path`."""
    return path + SIDECAR_SUFFIX


def write_sidecar(path, sha256):
    """Records `sha256` as the trusted hash of `path` (atomically)."""
    files.write_bytes_atomic(sidecar_of(path),
                             f"{sha256}  {os.path.basename(path)}\n".encode("ascii"))


def read_sidecar(sidecar, error=IntegrityError, hint="Delete it to record the hash again on "
                 "the next download."):
    """The sha256 recorded in `sidecar`; None when there is no sidecar.

    A sidecar that cannot be read, is empty or holds no sha256 raises `error` naming it and
    ending with `hint`.
    """
    try:
        with open(sidecar, encoding="ascii") as f:
            text = f.read().split()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"Cannot read the recorded hash {sidecar}: {e}. {hint}") from e
    if not text:
        raise error(f"The recorded hash file {sidecar} is empty. {hint}")
    try:
        return normalise_hex(text[0], 64, f"the sha256 recorded in {sidecar}")
    except ValueError as e:
        raise error(f"{e} {hint}") from e


def move_aside(path, reason):
    """Renames a file that failed verification to `<path>.corrupt-<time>-<pid>` (kept for a
    look, never used again); returns the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = f"{path}.corrupt-{stamp}-{os.getpid()}"
    os.replace(path, target)
    logger.warning("%s failed verification (%s); moved it aside to %s.", path, reason, target)
    return target


__all__ = ["move_aside", "normalise_hex", "read_sidecar", "sidecar_of", "verify_file",
           "write_sidecar"]
