"""The weights cache folder: where it is, and whether this process may write in it.

`DEEPLAB_KERAS_CACHE` names the folder (default `$KERAS_HOME/deeplab_keras`, with `KERAS_HOME`
defaulting to `~/.keras` as in keras). Standard library only.

Example:

```python
from deeplab_keras.weights import cache_folder

cache_folder.cache_dir()   # '/home/me/.keras/deeplab_keras'
```
"""

import logging
import os
import tempfile

from deeplab_keras.weights.errors import CacheNotWritableError

logger = logging.getLogger("deeplab_keras.weights")

CACHE_ENV = "DEEPLAB_KERAS_CACHE"
_FALLBACK_ROOT = os.path.join(tempfile.gettempdir(), ".keras")


def env_flag(name):
    """True when the environment variable `name` is 1, true, yes or on."""
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


def not_writable(folder, cause=None):
    detail = f" ({cause})" if cause else ""
    return CacheNotWritableError(
        f"The deeplab_keras cache folder {folder} cannot be written{detail}. Set the "
        f"environment variable {CACHE_ENV} to a writable folder (e.g. "
        f"`export {CACHE_ENV}=$HOME/deeplab_cache`), or KERAS_HOME to move the whole keras "
        f"cache.")


def ensure_folder(folder):
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as e:
        raise not_writable(folder, e) from e
    if not os.path.isdir(folder):
        raise not_writable(folder, "not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise not_writable(folder, "permission denied")


__all__ = ["CACHE_ENV", "cache_dir", "ensure_folder", "env_flag", "not_writable"]
