"""Verified downloads into the weights cache: temp file, verify, fsync, atomic rename.

Every file `fetch` returns has just been checked against its size and sha256 (or md5), on a
cache hit as well as after a download. A download goes to a unique temporary file in the cache
folder and only reaches its final name through `os.replace` once it is complete, verified and
on disk, so a killed process, a truncated transfer or a wrong file never leaves anything at the
final path. Processes that start at the same time take a per-entry `flock` lock, so one of
them downloads and the others wait and then verify its file.

Environment variables:

- `DEEPLAB_KERAS_CACHE`: the cache folder (default `$KERAS_HOME/deeplab_keras`, with
  `KERAS_HOME` defaulting to `~/.keras` as in keras).
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
import errno
import glob
import hashlib
import http.client
import json
import logging
import os
import pathlib
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    import fcntl
except ImportError:  # Windows: no flock; unique temp files + verification still keep it safe.
    fcntl = None

__all__ = [
    "CacheNotWritableError",
    "DownloadError",
    "FetchResult",
    "IntegrityError",
    "OfflineError",
    "cache_dir",
    "fetch",
    "fetch_info",
    "md5_file",
    "sha256_file",
    "verify_file",
]

logger = logging.getLogger("deeplab_keras.weights")

CACHE_ENV = "DEEPLAB_KERAS_CACHE"
OFFLINE_ENV = "DEEPLAB_KERAS_OFFLINE"
MIRROR_ENV = "DEEPLAB_KERAS_MIRROR"

_CHUNK = 1 << 20
_RETRY_BACKOFF_S = 0.5  # seconds, times the attempt number
_STALE_PARTIAL_S = 600  # a temp file untouched this long belongs to a dead process
_FALLBACK_ROOT = os.path.join(tempfile.gettempdir(), ".keras")
_USER_AGENT = "deeplab-keras (+https://github.com/; urllib)"


class DownloadError(RuntimeError):
    """A file could not be downloaded (network error, truncated transfer, no source left)."""


class IntegrityError(DownloadError):
    """A file's size, sha256 or md5 is not the expected one."""


class OfflineError(DownloadError):
    """Offline mode is on and the file is not in the cache."""


class CacheNotWritableError(DownloadError, PermissionError):
    """The cache folder cannot be created or written."""


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
        sidecar: the `.sha256` file holding that recorded hash, or None.
    """

    path: str
    sha256: str
    size: int
    source: str
    downloaded: bool
    trust_on_first_use: bool
    sidecar: str = None


# --------------------------------------------------------------------------- hashing


def _hash_file(path, algorithms=("sha256",)):
    hashers = {name: hashlib.new(name) for name in algorithms}
    size = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            for h in hashers.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashers.items()}, size


def sha256_file(path):
    """Returns the sha256 (hex) of a file, read in 1 MiB chunks.

    Example:

    >>> sha256_file("model.h5")  # doctest: +SKIP
    '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
    """
    return _hash_file(path, ("sha256",))[0]["sha256"]


def md5_file(path):
    """Returns the md5 (hex) of a file (keras.applications publishes md5 hashes).

    Example:

    >>> md5_file("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")  # doctest: +SKIP
    '4d473c1dd8becc155b73f8504c6f6626'
    """
    return _hash_file(path, ("md5",))[0]["md5"]


def _normalise_hex(value, length, what):
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
    sha256 = _normalise_hex(sha256, 64, "sha256")
    md5 = _normalise_hex(md5, 32, "md5")
    actual_size = os.path.getsize(path)
    if size is not None and actual_size != int(size):
        raise IntegrityError(f"{path}: size is {actual_size} bytes, expected {int(size)} bytes "
                             f"(sha256 expected {sha256 or 'unknown'}).")
    digests, _ = _hash_file(path, ("sha256", "md5") if md5 else ("sha256",))
    if sha256 is not None and digests["sha256"] != sha256:
        raise IntegrityError(f"{path}: sha256 mismatch: expected {sha256}, actual "
                             f"{digests['sha256']} ({actual_size} bytes).")
    if md5 is not None and digests["md5"] != md5:
        raise IntegrityError(f"{path}: md5 mismatch: expected {md5}, actual {digests['md5']} "
                             f"({actual_size} bytes).")
    return digests["sha256"]


# --------------------------------------------------------------------------- cache folder


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _writable_dir(path):
    """Creates `path` (mode 0700) if needed; True when this process can write in it."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError:
        return False
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def cache_dir():
    """Returns the cache folder: `$DEEPLAB_KERAS_CACHE`, else `$KERAS_HOME/deeplab_keras`.

    `KERAS_HOME` defaults to `~/.keras` as in keras. When neither variable is set and
    `~/.keras` cannot be written, it falls back (with a warning) to `/tmp/.keras/deeplab_keras`
    as keras does, but only to a folder owned by this user that no one else can write. A folder
    named by `DEEPLAB_KERAS_CACHE` or `KERAS_HOME` is used as is: if it is not writable,
    `fetch` raises `CacheNotWritableError` rather than silently going elsewhere.

    Example:

    >>> import os
    >>> os.environ["DEEPLAB_KERAS_CACHE"] = "/data/deeplab_cache"
    >>> cache_dir()
    '/data/deeplab_cache'
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return os.path.abspath(os.path.expanduser(override))
    keras_home = os.environ.get("KERAS_HOME")
    if keras_home:
        return os.path.join(os.path.abspath(os.path.expanduser(keras_home)), "deeplab_keras")
    default = os.path.join(os.path.expanduser("~"), ".keras", "deeplab_keras")
    if _writable_dir(default):
        return default
    fallback = os.path.join(_FALLBACK_ROOT, "deeplab_keras")
    if _writable_dir(fallback) and _private_dir(fallback):
        logger.warning("%s is not writable; using %s as the deeplab_keras cache (set %s to "
                       "choose another folder).", default, fallback, CACHE_ENV)
        return fallback
    return default  # fetch then reports that it is not writable


def _private_dir(path):
    """True when `path` belongs to this user and no one else can write in it."""
    if not hasattr(os, "getuid"):
        return True
    st = os.stat(path)
    if st.st_uid != os.getuid():
        return False
    if st.st_mode & 0o022:
        try:
            os.chmod(path, st.st_mode & ~0o022)
        except OSError:
            return False
    return True


def _not_writable(folder, cause=None):
    detail = f" ({cause})" if cause else ""
    return CacheNotWritableError(
        f"The deeplab_keras cache folder {folder} cannot be written{detail}. Set the "
        f"environment variable {CACHE_ENV} to a writable folder (e.g. "
        f"`export {CACHE_ENV}=$HOME/deeplab_cache`), or KERAS_HOME to move the whole keras "
        f"cache.")


def _ensure_folder(folder):
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as e:
        raise _not_writable(folder, e) from e
    if not os.path.isdir(folder):
        raise _not_writable(folder, "not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _not_writable(folder, "permission denied")


# --------------------------------------------------------------------------- locking


@contextlib.contextmanager
def _entry_lock(path, label):
    """An exclusive `flock` on `path` (created if needed), held for the block."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise _not_writable(os.path.dirname(path), e) from e
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                logger.info("Waiting for another process that is downloading %s ...", label)
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --------------------------------------------------------------------------- sidecar (TOFU)


def _read_sidecar(path):
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().split()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise IntegrityError(f"Cannot read the recorded hash {path}: {e}. Delete it to record "
                             f"the hash again on the next download.") from e
    if not text:
        raise IntegrityError(f"The recorded hash file {path} is empty. Delete it to record the "
                             f"hash again on the next download.")
    return _normalise_hex(text[0], 64, f"the sha256 recorded in {path}")


def write_json_atomic(path, payload):
    """Writes `payload` as indented JSON (numpy scalars as floats) with `write_bytes_atomic`,
    creating the folder if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_bytes_atomic(os.path.abspath(path),
                       (json.dumps(payload, indent=2, default=float) + "\n").encode())


def write_bytes_atomic(path, data):
    """Writes `data` to `path` through a fsynced temp file in the same folder and a rename."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder):
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- progress


class _Progress:
    """A one-line progress bar on stderr (redrawn in place on a terminal)."""

    def __init__(self, label, total, enabled):
        self.label, self.total, self.enabled = label, total, enabled
        self.start = self.last = time.monotonic()
        self.tty = enabled and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        self.last_fraction = 0.0
        self.shown = None

    def update(self, done, final=False):
        if not self.enabled or (done == self.shown and not (final and self.tty)):
            return
        now = time.monotonic()
        fraction = done / self.total if self.total else 0.0
        if not final:
            if self.tty and now - self.last < 0.2:
                return
            if not self.tty and (now - self.last < 5.0 and fraction - self.last_fraction < 0.25):
                return
        self.last, self.last_fraction, self.shown = now, fraction, done
        rate = done / max(now - self.start, 1e-6)
        if self.total:
            width = 30
            filled = int(width * min(fraction, 1.0))
            bar = "=" * filled + "." * (width - filled)
            text = (f"{self.label}: [{bar}] {_human(done)}/{_human(self.total)} "
                    f"{100 * fraction:5.1f}% {_human(rate)}/s")
        else:
            text = f"{self.label}: {_human(done)} {_human(rate)}/s"
        end = "\n" if final or not self.tty else ""
        sys.stderr.write(("\r" if self.tty else "") + text + end)
        sys.stderr.flush()


def _human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GiB"


# --------------------------------------------------------------------------- sources


def _check_name(value, what):
    if (not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value):
        raise ValueError(f"{what} must be a plain file name, got {value!r}.")
    return value


def _filename_from_url(url):
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    return path.rsplit("/", 1)[-1]


def _is_local(url):
    return urllib.parse.urlsplit(url).scheme == "file"


def _as_url(location):
    """A URL for `location`: a URL stays as is, a local path becomes `file://`."""
    scheme = urllib.parse.urlsplit(location).scheme
    if scheme in ("http", "https", "file"):
        return location
    if len(scheme) > 1:
        raise ValueError(f"Unsupported URL scheme {scheme!r} in {location!r}; use http(s):// "
                         f"or file://, or a local folder.")
    return pathlib.Path(os.path.abspath(os.path.expanduser(location))).as_uri()


def _mirror_url(mirror, filename):
    url = _as_url(mirror)
    quoted = urllib.parse.quote(filename)
    return url + quoted if url.endswith("/") else url + "/" + quoted


def _sources(url, filename, mirrors):
    sources = []
    env_mirror = os.environ.get(MIRROR_ENV, "").strip()
    if env_mirror:
        names = [filename]
        original = _filename_from_url(url)
        if original and original != filename:
            names.append(original)  # the cache may rename; a mirror may keep the original
        sources.extend(("mirror", _mirror_url(env_mirror, n)) for n in names)
    sources.append(("url", _as_url(url)))
    for mirror in mirrors or ():
        sources.append(("mirror", _as_url(mirror)))
    return sources


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
        bar = _Progress(label, total, progress)
        limit = expected_size if expected_size is not None else announced
        while True:
            try:
                chunk = response.read(_CHUNK)
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
    for tmp in glob.glob(glob.escape(final) + ".*.partial"):
        with contextlib.suppress(OSError):
            if now - os.path.getmtime(tmp) > _STALE_PARTIAL_S:
                os.unlink(tmp)
                logger.info("Removed %s, left by an interrupted download.", tmp)


def _quarantine(path, reason):
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = f"{path}.corrupt-{stamp}-{os.getpid()}"
    os.replace(path, target)
    logger.warning("%s failed verification (%s); moved it aside to %s.", path, reason, target)
    return target


@dataclasses.dataclass
class _Spec:
    name: str
    url: str
    final: str
    sha256: str
    md5: str
    size: int
    sidecar: str

    def expected_sha256(self):
        return self.sha256 or _read_sidecar(self.sidecar)

    def describe(self):
        parts = [f"sha256 {self.sha256}" if self.sha256 else None,
                 f"md5 {self.md5}" if self.md5 else None,
                 f"{self.size} bytes" if self.size is not None else None]
        parts = [p for p in parts if p]
        return ", ".join(parts) if parts else "no published hash (trust on first use)"


def _check_cached(spec):
    """Verifies the file at the final path; returns its sha256. Raises IntegrityError."""
    expected = spec.expected_sha256()
    return verify_file(spec.final, sha256=expected, size=spec.size, md5=spec.md5)


def _result(spec, sha, source, downloaded):
    tofu = spec.sha256 is None
    return FetchResult(path=spec.final, sha256=sha, size=os.path.getsize(spec.final),
                       source=source, downloaded=downloaded, trust_on_first_use=tofu,
                       sidecar=spec.sidecar if tofu else None)


def _record_tofu(spec, sha, source):
    write_bytes_atomic(spec.sidecar, f"{sha}  {os.path.basename(spec.final)}\n".encode("ascii"))
    what = "md5 verified; sha256" if spec.md5 else "no published hash; sha256"
    logger.warning("%s: %s %s recorded in %s (trust on first use: this file from %s is trusted "
                   "and every later use is checked against it).", spec.name, what, sha,
                   spec.sidecar, source)


def fetch_info(url, *, name, sha256=None, size=None, md5=None, filename=None,
               subdir="downloads", progress=True, mirrors=None, retries=3, timeout=60.0):
    """Like `fetch`, but returns a `FetchResult` (path, sha256, source, trust on first use).

    Example:

    >>> info = fetch_info("https://example.org/model.h5", name="example")  # doctest: +SKIP
    >>> info.trust_on_first_use, info.sidecar  # doctest: +SKIP
    (True, '~/.keras/deeplab_keras/downloads/model.h5.sha256')
    """
    sha256 = _normalise_hex(sha256, 64, "sha256")
    md5 = _normalise_hex(md5, 32, "md5")
    if size is not None:
        size = int(size)
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}.")
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}.")
    _as_url(url)  # an unsupported scheme is reported before anything else
    filename = _check_name(filename or _filename_from_url(url), "filename")
    subdir_parts = [p for p in str(subdir or "").replace("\\", "/").split("/")
                    if p not in ("", ".")]
    for part in subdir_parts:
        _check_name(part, "subdir components")
    root = cache_dir()
    folder = os.path.join(root, *subdir_parts)
    final = os.path.join(folder, filename)
    spec = _Spec(name=name, url=url, final=final, sha256=sha256, md5=md5, size=size,
                 sidecar=final + ".sha256")
    offline = _env_flag(OFFLINE_ENV)

    # Fast path, no lock: anything at the final path arrived by an atomic rename.
    if os.path.isfile(final):
        try:
            if spec.expected_sha256() is not None:
                return _result(spec, _check_cached(spec), "cache", False)
        except IntegrityError:
            pass  # moved aside under the lock below

    _ensure_folder(folder)
    with _entry_lock(final + ".lock", f"{name} ({filename})"):
        if os.path.isfile(final):
            expected = spec.expected_sha256()  # a broken sidecar is reported, not the file
            try:
                sha = verify_file(final, sha256=expected, size=spec.size, md5=spec.md5)
                if expected is None:
                    _record_tofu(spec, sha, f"the file already in the cache at {final}")
                return _result(spec, sha, "cache", False)
            except IntegrityError as e:
                quarantined = _quarantine(final, e)
                if offline:
                    raise OfflineError(_offline_message(spec, f"The cached copy failed "
                                                        f"verification ({e}) and was moved to "
                                                        f"{quarantined}.")) from e
        _remove_stale_partials(final)
        return _download(spec, folder, filename, mirrors, offline, progress, retries, timeout)


def _offline_message(spec, prefix=""):
    return (f"{prefix + ' ' if prefix else ''}{OFFLINE_ENV}=1 (offline mode) and the weights "
            f"file for {spec.name!r} is not in the cache. Download it elsewhere from {spec.url} "
            f"and place it at {spec.final} (expected: {spec.describe()}), or set "
            f"{MIRROR_ENV} to a local folder that holds {os.path.basename(spec.final)}, or unset "
            f"{OFFLINE_ENV}.")


def _download(spec, folder, filename, mirrors, offline, progress, retries, timeout):
    sources = _sources(spec.url, filename, mirrors)
    if offline:
        sources = [(kind, u) for kind, u in sources if _is_local(u)]
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
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=filename + ".", suffix=".partial")
    except OSError as e:
        raise _not_writable(folder, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            received = _download_to(source, f, spec.size, f"{spec.name} ({filename})",
                                    progress, timeout)
            f.flush()
            os.fsync(f.fileno())
        if spec.size is not None and received < spec.size:
            raise _Truncated(f"{source}: got {received} of {spec.size} bytes.")
        expected = spec.expected_sha256()
        try:
            sha = verify_file(tmp, sha256=expected, size=spec.size, md5=spec.md5)
        except IntegrityError as e:
            hint = (f" The sha256 was recorded in {spec.sidecar} at the first download (trust on "
                    f"first use); if the file has legitimately changed upstream, delete that file."
                    if spec.sha256 is None and expected is not None else "")
            raise IntegrityError(f"download from {source}: {e}{hint}") from e
        if expected is None:
            _record_tofu(spec, sha, source)
        os.chmod(tmp, 0o644)
        os.replace(tmp, spec.final)
        tmp = None
        _fsync_dir(folder)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
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
