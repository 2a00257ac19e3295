"""Pretrained weights: verified downloads, the cache, safe archive extraction.

Example:

```python
from deeplab_keras import weights

path = weights.fetch("https://example.org/model.h5", sha256="9f86d0...", name="example")
```
"""

from deeplab_keras.weights import archive
from deeplab_keras.weights import download
from deeplab_keras.weights.archive import UnsafeArchiveError
from deeplab_keras.weights.archive import extract_member
from deeplab_keras.weights.archive import list_members
from deeplab_keras.weights.archive import safe_extract
from deeplab_keras.weights.download import CacheNotWritableError
from deeplab_keras.weights.download import DownloadError
from deeplab_keras.weights.download import FetchResult
from deeplab_keras.weights.download import IntegrityError
from deeplab_keras.weights.download import OfflineError
from deeplab_keras.weights.download import cache_dir
from deeplab_keras.weights.download import fetch
from deeplab_keras.weights.download import fetch_info
from deeplab_keras.weights.download import md5_file
from deeplab_keras.weights.download import sha256_file
from deeplab_keras.weights.download import verify_file

__all__ = ["CacheNotWritableError", "DownloadError", "FetchResult", "IntegrityError",
           "OfflineError", "UnsafeArchiveError", "archive", "cache_dir", "download",
           "extract_member", "fetch", "fetch_info", "list_members", "md5_file", "safe_extract",
           "sha256_file", "verify_file"]
