"""Verified downloads into the weights cache: temp file, verify, fsync, atomic rename.

Every file `fetch` returns has just been checked against its size and sha256 (or md5), on a
cache hit as well as after a download. A download goes to a unique temporary file in the cache
folder and only reaches its final name through `os.replace` once it is complete, verified and
on disk (`deeplab_keras.files.atomic_path`), so a killed process, a truncated transfer or a
wrong file never leaves anything at the final path. Processes that start at the same time take
a per-entry `flock` lock, so one of them downloads and the others wait and then verify its file.

Environment variables:

- `DEEPLAB_KERAS_CACHE`: the cache folder (`cache_folder.cache_dir`).
- `DEEPLAB_KERAS_OFFLINE=1`: never touch the network; a file that is not cached is an error
  that says where to place it by hand. `file://` sources and mirror folders still work.
- `DEEPLAB_KERAS_MIRROR`: a local folder or a URL prefix that is tried first, by file name.

This module uses only the standard library (no keras import), so it is cheap to import in
worker processes.

Example:

```python
from deeplab_keras.weights import download

path = download.fetch(
    "https://example.org/files/model.h5",
    sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    size=4,
    name="example_model",
)
```
"""

import contextlib
import dataclasses
import glob
import http.client
import logging
import os
import time
import urllib.error
import urllib.request

from deeplab_keras import files
from deeplab_keras.weights import integrity
from deeplab_keras.weights import urls
from deeplab_keras.weights.cache_folder import cache_dir
from deeplab_keras.weights.cache_folder import ensure_folder
from deeplab_keras.weights.cache_folder import env_flag
from deeplab_keras.weights.cache_folder import not_writable
from deeplab_keras.weights.errors import CacheNotWritableError
from deeplab_keras.weights.errors import DownloadError
from deeplab_keras.weights.errors import IntegrityError
from deeplab_keras.weights.errors import OfflineError
from deeplab_keras.weights.progress_bar import ProgressBar
from deeplab_keras.weights.urls import MIRROR_ENV

__all__ = [
    "CacheNotWritableError",
    "DownloadError",
    "FetchResult",
    "IntegrityError",
    "OfflineError",
    "cache_dir",
    "fetch",
    "fetch_info",
    "trust",
]

logger = logging.getLogger("deeplab_keras.weights")

OFFLINE_ENV = "DEEPLAB_KERAS_OFFLINE"

_RETRY_BACKOFF_S = 0.5  # seconds, times the attempt number
_STALE_PARTIAL_S = 600  # a temp file untouched this long belongs to a dead process
_USER_AGENT = "deeplab-keras (+https://github.com/; urllib)"


class _Truncated(DownloadError):
    """Fewer bytes arrived than announced; worth retrying."""


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """What `fetch_info` did.

    Attributes:
        path: the verified local file.
        sha256: its sha256 (hex).
        size: its size in bytes.
        source: where it came from (`"cache"` or the URL/mirror it was downloaded from).
        downloaded: whether this call downloaded it.
        trust_on_first_use: the sha256 is not published; it was recorded in
            `path + ".sha256"` at the first download and every later use is checked against it.
        sidecar: the `.sha256` file holding that recorded hash, or None (also while a file
            fetched with `trust=False` has not been trusted yet).
    """

    path: str
    sha256: str
    size: int
    source: str
    downloaded: bool
    trust_on_first_use: bool
    sidecar: str = None



# --------------------------------------------------------------------------- download


def _download_to(url, tmp_file, expected_size, label, progress, timeout):
    """Streams `url` into the open file `tmp_file`; returns the number of bytes."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    done = 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        header = response.headers.get("Content-Length")
        announced = int(header) if header and header.strip().isdigit() else None
        if announced is not None and expected_size is not None and announced != expected_size:
            raise IntegrityError(f"{url} announces {announced} bytes (Content-Length), "
                                 f"expected {expected_size} bytes.")
        total = announced if announced is not None else expected_size
        bar = ProgressBar(label, total, progress)
        limit = expected_size if expected_size is not None else announced
        while True:
            try:
                chunk = response.read(files.CHUNK)
            except http.client.IncompleteRead as e:
                tmp_file.write(e.partial)
                done += len(e.partial)
                raise _Truncated(f"{url}: connection closed after {done} of {total} bytes.") from e
            if not chunk:
                break
            done += len(chunk)
            if limit is not None and done > limit:
                raise IntegrityError(f"{url} sent more than the expected {limit} bytes.")
            tmp_file.write(chunk)
            bar.update(done)
        bar.update(done, final=True)
    if total is not None and done < total:
        raise _Truncated(f"{url}: connection closed after {done} of {total} bytes.")
    return done


def _transient(error):
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code in (408, 429)
    if isinstance(error, urllib.error.URLError):
        return not _is_missing_local(error)
    return isinstance(error, (_Truncated, http.client.HTTPException, OSError))


def _is_missing_local(error):
    reason = getattr(error, "reason", None)
    return isinstance(reason, FileNotFoundError) or isinstance(error, FileNotFoundError)


def _remove_stale_partials(final):
    now = time.time()
    for tmp in glob.glob(glob.escape(final) + ".*" + files.PARTIAL_SUFFIX):
        with contextlib.suppress(OSError):
            if now - os.path.getmtime(tmp) > _STALE_PARTIAL_S:
                os.unlink(tmp)
                logger.info("Removed %s, left by an interrupted download.", tmp)


@dataclasses.dataclass
class _Spec:
    name: str
    url: str
    final: str
    sha256: str
    md5: str
    size: int
    sidecar: str
    trust: bool = True
    mirror_names: tuple = None

    def expected_sha256(self):
        return self.sha256 or integrity.read_sidecar(self.sidecar)

    def describe(self):
        parts = [f"sha256 {self.sha256}" if self.sha256 else None,
                 f"md5 {self.md5}" if self.md5 else None,
                 f"{self.size} bytes" if self.size is not None else None]
        parts = [p for p in parts if p]
        return ", ".join(parts) if parts else "no published hash (trust on first use)"


def _check_cached(spec):
    """Verifies the file at the final path; returns its sha256. Raises IntegrityError."""
    expected = spec.expected_sha256()
    return integrity.verify_file(spec.final, sha256=expected, size=spec.size, md5=spec.md5)


def _result(spec, sha, source, downloaded):
    tofu = spec.sha256 is None
    recorded = tofu and os.path.exists(spec.sidecar)
    return FetchResult(path=spec.final, sha256=sha, size=os.path.getsize(spec.final),
                       source=source, downloaded=downloaded, trust_on_first_use=tofu,
                       sidecar=spec.sidecar if recorded else None)


def trust(result, name):
    """Records the sha256 of a file fetched with `trust=False` (no published hash) once the
    caller has checked it; later fetches verify against it. Returns the sidecar path (None when
    a published hash makes trust unnecessary)."""
    if not result.trust_on_first_use:
        return None
    sidecar = integrity.sidecar_of(result.path)
    if not os.path.exists(sidecar):
        spec = _Spec(name=name, url=result.source, final=result.path, sha256=None, md5=None,
                     size=None, sidecar=sidecar)
        _record_tofu(spec, result.sha256, result.source)
    return sidecar


def _record_tofu(spec, sha, source):
    integrity.write_sidecar(spec.final, sha)
    what = "md5 verified; sha256" if spec.md5 else "no published hash; sha256"
    logger.warning("%s: %s %s recorded in %s (trust on first use: this file from %s is trusted "
                   "and every later use is checked against it).", spec.name, what, sha,
                   spec.sidecar, source)


def fetch_info(url, *, name, sha256=None, size=None, md5=None, filename=None,
               subdir="downloads", progress=True, mirrors=None, retries=3, timeout=60.0,
               mirror_names=None, trust=True):
    """Like `fetch`, but returns a `FetchResult` (path, sha256, source, trust on first use).

    Two more arguments:

    - `mirror_names`: the relative paths to look up under `DEEPLAB_KERAS_MIRROR` (default:
      the cache file name, then the URL's own file name).
    - `trust=False`: with no published sha256, do not record the first download's sha256 yet;
      the caller checks the file (e.g. converts it) and then calls `trust(result, name)`, so a file
      that turns out to be wrong is never trusted.

    Example:

    >>> info = fetch_info("https://example.org/model.h5", name="example")  # doctest: +SKIP
    >>> info.trust_on_first_use, info.sidecar  # doctest: +SKIP
    (True, '~/.keras/deeplab_keras/downloads/model.h5.sha256')
    """
    sha256 = integrity.normalise_hex(sha256, 64, "sha256")
    md5 = integrity.normalise_hex(md5, 32, "md5")
    if size is not None:
        size = int(size)
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}.")
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}.")
    urls.as_url(url)  # an unsupported scheme is reported before anything else
    filename = urls.check_name(filename or urls.filename_from_url(url), "filename")
    subdir_parts = [p for p in str(subdir or "").replace("\\", "/").split("/")
                    if p not in ("", ".")]
    for part in subdir_parts:
        urls.check_name(part, "subdir components")
    root = cache_dir()
    folder = os.path.join(root, *subdir_parts)
    final = os.path.join(folder, filename)
    spec = _Spec(name=name, url=url, final=final, sha256=sha256, md5=md5, size=size,
                 sidecar=integrity.sidecar_of(final), trust=bool(trust),
                 mirror_names=tuple(mirror_names) if mirror_names else None)
    offline = env_flag(OFFLINE_ENV)

    # Fast path, no lock: anything at the final path arrived by an atomic rename.
    if os.path.isfile(final):
        try:
            if spec.expected_sha256() is not None:
                return _result(spec, _check_cached(spec), "cache", False)
        except IntegrityError:
            pass  # moved aside under the lock below

    ensure_folder(folder)
    with _entry_lock(final + ".lock", f"{name} ({filename})"):
        if os.path.isfile(final):
            expected = spec.expected_sha256()  # a broken sidecar is reported, not the file
            try:
                sha = integrity.verify_file(final, sha256=expected, size=spec.size, md5=spec.md5)
                if expected is None and spec.trust:
                    _record_tofu(spec, sha, f"the file already in the cache at {final}")
                return _result(spec, sha, "cache", False)
            except IntegrityError as e:
                quarantined = integrity.move_aside(final, e)
                if offline:
                    raise OfflineError(_offline_message(spec, f"The cached copy failed "
                                                        f"verification ({e}) and was moved to "
                                                        f"{quarantined}.")) from e
        _remove_stale_partials(final)
        return _download(spec, folder, filename, mirrors, offline, progress, retries, timeout)


def _entry_lock(path, label):
    """The per-entry lock (`files.file_lock`); a folder we cannot write is reported as such."""
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(files.file_lock(path, on_wait=lambda: logger.info(
            "Waiting for another process that is downloading %s ...", label)))
    except OSError as e:
        raise not_writable(os.path.dirname(path), e) from e
    return stack


def _offline_message(spec, prefix=""):
    return (f"{prefix + ' ' if prefix else ''}{OFFLINE_ENV}=1 (offline mode) and the weights "
            f"file for {spec.name!r} is not in the cache. Download it elsewhere from {spec.url} "
            f"and place it at {spec.final} (expected: {spec.describe()}), or set "
            f"{MIRROR_ENV} to a local folder that holds {os.path.basename(spec.final)}, or unset "
            f"{OFFLINE_ENV}.")


def _download(spec, folder, filename, mirrors, offline, progress, retries, timeout):
    sources = urls.sources(spec.url, filename, mirrors, spec.mirror_names)
    if offline:
        sources = [(kind, u) for kind, u in sources if urls.is_local(u)]
        if not sources:
            raise OfflineError(_offline_message(spec))
    failures = []
    integrity_failures = []
    for kind, source in sources:
        for attempt in range(1, retries + 1):
            try:
                return _download_once(spec, folder, filename, source, progress, timeout)
            except CacheNotWritableError:
                raise
            except IntegrityError as e:
                integrity_failures.append(e)
                failures.append(f"{source}: {e}")
                break  # a complete but wrong file: the next source, not the same one again
            except Exception as e:  # noqa: BLE001 - classified below
                failures.append(f"{source} (attempt {attempt}/{retries}): {e}")
                if kind == "mirror" and _is_missing_local(e):
                    logger.info("%s is not in the mirror (%s); trying the next source.",
                                filename, source)
                    break
                if isinstance(e, urllib.error.HTTPError) and e.code == 404 and kind == "mirror":
                    break
                if not _transient(e):
                    break
                if attempt < retries:
                    logger.warning("Download of %s from %s failed (%s); retrying (%d/%d).",
                                   spec.name, source, e, attempt + 1, retries)
                    time.sleep(_RETRY_BACKOFF_S * attempt)
    detail = "\n  ".join(failures)
    message = (f"Could not download the weights file for {spec.name!r} ({spec.describe()}).\n"
               f"  {detail}\nNothing was written to {spec.final}. If you can get the file another "
               f"way, place it at that path (it is verified on use), or set {MIRROR_ENV} to a "
               f"folder or URL prefix that holds {filename}.")
    if integrity_failures and len(integrity_failures) == len(sources):
        raise IntegrityError(message) from integrity_failures[-1]
    raise DownloadError(message)


def _download_once(spec, folder, filename, source, progress, timeout):
    stack = contextlib.ExitStack()
    try:
        tmp = stack.enter_context(files.atomic_path(spec.final, suffix=files.PARTIAL_SUFFIX,
                                                    mode=0o644, hidden=False))
    except OSError as e:
        raise not_writable(folder, e) from e
    with stack:
        with open(tmp, "wb") as f:
            received = _download_to(source, f, spec.size, f"{spec.name} ({filename})",
                                    progress, timeout)
        if spec.size is not None and received < spec.size:
            raise _Truncated(f"{source}: got {received} of {spec.size} bytes.")
        expected = spec.expected_sha256()
        try:
            sha = integrity.verify_file(tmp, sha256=expected, size=spec.size, md5=spec.md5)
        except IntegrityError as e:
            hint = (f" The sha256 was recorded in {spec.sidecar} at the first download (trust on "
                    f"first use); if the file has legitimately changed upstream, delete that file."
                    if spec.sha256 is None and expected is not None else "")
            raise IntegrityError(f"download from {source}: {e}{hint}") from e
        if expected is None and spec.trust:
            _record_tofu(spec, sha, source)
    logger.info("%s: downloaded %s to %s (sha256 %s).", spec.name, source, spec.final, sha)
    return _result(spec, sha, source, True)


def fetch(url, *, name, sha256=None, size=None, md5=None, filename=None, subdir="downloads",
          progress=True, mirrors=None, retries=3, timeout=60.0):
    """Returns the path of a verified local copy of `url`, downloading it if needed.

    A cached file is re-verified (size and sha256, or md5) on every call; a file that fails is
    moved aside as `<file>.corrupt-<time>-<pid>` and downloaded again (or, offline, reported).
    A download goes to a unique temporary file in the cache folder, is verified, fsynced and
    then renamed into place, under a per-entry lock so concurrent processes download once.

    Args:
        url: `https://`, `http://` or `file://` URL (or a local path) of the file.
        name: the registry entry's name, used in messages.
        sha256: the published sha256. None: the sha256 of the first download is recorded in
            `<file>.sha256` and later uses are checked against it ("trust on first use").
        size: the expected size in bytes, if known.
        md5: a published md5 (as keras.applications publishes), checked in addition; with
            no sha256 the sha256 is recorded as above.
        filename: the file name in the cache (default: the URL's last path component).
        subdir: folder under `cache_dir()`.
        progress: show a progress bar on stderr.
        mirrors: more URLs (or local paths) of the same file, tried after `url`.
            `DEEPLAB_KERAS_MIRROR` (a folder or URL prefix, looked up by file name) is tried
            before `url`.
        retries: attempts per source for transient errors (truncated transfer, timeouts, 5xx).
        timeout: socket timeout in seconds.

    Returns:
        The path of the verified file.

    Raises:
        IntegrityError: the file's size or hash is wrong (expected and actual are named).
        OfflineError: `DEEPLAB_KERAS_OFFLINE=1` and the file is not cached; the message names
            the entry, the URL and the path where to place the file by hand.
        CacheNotWritableError: the cache folder cannot be written.
        DownloadError: every source failed.

    Example:

    ```python
    path = fetch("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                 "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 md5="88cf7a10940856eca736dc7b7e228a21", name="resnet101_imagenet",
                 subdir="keras_applications")
    ```
    """
    return fetch_info(url, name=name, sha256=sha256, size=size, md5=md5, filename=filename,
                      subdir=subdir, progress=progress, mirrors=mirrors, retries=retries,
                      timeout=timeout).path
