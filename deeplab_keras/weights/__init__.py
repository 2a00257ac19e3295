"""Pretrained weights: the registry, `load_model`, verified downloads, the cache, archives.

Where things are: `registry` (register / look up / list), `specs` (what a record holds),
`records/` (one file per source), `loading` (`load_model`), `cache` (converted weights),
`original_files` (fetch and unpack a source), `download` (verified downloads; `cache_folder`,
`urls`, `progress_bar`), `integrity` (hashes and sidecars),
`imagenet_backbones` (keras.applications backbones), `cards` (model cards), `errors`.
Submodules load on first use.

Example:

```python
from deeplab_keras import weights

path = weights.fetch("https://example.org/model.h5", sha256="9f86d0...", name="example")
```
"""

from deeplab_keras import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submodules=("cache", "cache_folder", "cards", "download", "errors",
                "imagenet_backbones", "integrity", "loading", "original_files",
                "progress_bar", "records", "registry", "specs", "urls"),
    names={
        "CacheNotWritableError": "errors", "DownloadError": "errors",
        "IntegrityError": "errors", "OfflineError": "errors", "WeightsIntegrityError": "errors",
        "FetchResult": "download", "fetch": "download", "fetch_info": "download",
        "cache_dir": "cache_folder", "verify_file": "integrity",
        "Metric": "specs", "Preprocessing": "specs", "WeightRecord": "specs",
        "get_record": "registry", "list_models": "registry", "register": "registry",
        "load_model": "loading", "model_card": "cards",
        "build_model": "imagenet_backbones", "load_backbone_weights": "imagenet_backbones",
    })
