"""Files shipped inside the package: the example images and the bundled models.

Example:

```python
from deeplab_keras import assets

assets.example_images()                     # the three bundled CamVid val frames
assets.example_labels()                     # their CamVid label PNGs (0..10, 11 = void)
assets.package_path("assets/models/deeplabv3plus_resnet50w40_camvid/weights.h5")
```
"""

import glob
import os

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES_DIR = os.path.join(PACKAGE_DIR, "assets", "examples")


def package_path(relative):
    """Absolute path of a file shipped inside the `deeplab_keras` package ("assets/...")."""
    return os.path.join(PACKAGE_DIR, *relative.split("/"))


def example_images():
    """Paths of the bundled example images (three CamVid val frames, research use)."""
    return sorted(glob.glob(os.path.join(EXAMPLES_DIR, "*.jpg")))


def example_labels():
    """Paths of the example images' CamVid label PNGs, in `example_images()` order: one uint8
    channel, values 0..10 (`data.get_layout("camvid").class_names`), 11 = void."""
    labels = [path[:-len(".jpg")] + "_label.png" for path in example_images()]
    missing = [path for path in labels if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"bundled example labels missing: {missing}; reinstall "
                                "deeplab-keras (the package data is incomplete).")
    return labels


__all__ = ["EXAMPLES_DIR", "PACKAGE_DIR", "example_images", "example_labels", "package_path"]
