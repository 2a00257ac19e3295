"""The errors the weights package raises, in one place (download, cache, verification)."""


class DownloadError(RuntimeError):
    """A file could not be downloaded (network error, truncated transfer, no source left)."""


class IntegrityError(DownloadError):
    """A file's size, sha256 or md5 is not the expected one."""


class OfflineError(DownloadError):
    """Offline mode is on and the file is not in the cache."""


class CacheNotWritableError(DownloadError, PermissionError):
    """The cache folder cannot be created or written."""


class WeightsIntegrityError(ValueError):
    """A converted or bundled weights file does not match its recorded sha256."""


__all__ = ["CacheNotWritableError", "DownloadError", "IntegrityError", "OfflineError",
           "WeightsIntegrityError"]
