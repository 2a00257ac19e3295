"""Pretrained weights: the registry, `load_model`, verified downloads, the cache, archives.

Example:

```python
from deeplab_keras import weights

path = weights.fetch("https://example.org/model.h5", sha256="9f86d0...", name="example")
```
"""

from deeplab_keras.weights import archive
from deeplab_keras.weights import download
from deeplab_keras.weights import loading
from deeplab_keras.weights import records
from deeplab_keras.weights import registry
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
from deeplab_keras.weights.loading import WeightsIntegrityError
from deeplab_keras.weights.loading import build_model
from deeplab_keras.weights.loading import load_backbone_weights
from deeplab_keras.weights.loading import load_model
from deeplab_keras.weights.registry import Metric
from deeplab_keras.weights.registry import Preprocessing
from deeplab_keras.weights.registry import WeightRecord
from deeplab_keras.weights.registry import get_record
from deeplab_keras.weights.registry import list_models
from deeplab_keras.weights.registry import model_card
from deeplab_keras.weights.registry import register

__all__ = ["CacheNotWritableError", "DownloadError", "FetchResult", "IntegrityError", "Metric",
           "OfflineError", "Preprocessing", "UnsafeArchiveError", "WeightRecord",
           "WeightsIntegrityError", "archive", "build_model", "cache_dir", "download",
           "extract_member", "fetch", "fetch_info", "get_record", "list_members", "list_models",
           "load_backbone_weights", "load_model", "loading", "md5_file", "model_card", "records",
           "register", "registry", "safe_extract", "sha256_file", "verify_file"]
