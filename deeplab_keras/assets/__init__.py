"""Files shipped inside the package: the example images and the bundled models.

Example:

```python
from deeplab_keras import assets

assets.example_images()                     # the three bundled CamVid val frames
assets.package_path("assets/models/deeplabv3plus_mobilenetv2_camvid/weights.h5")
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


__all__ = ["EXAMPLES_DIR", "PACKAGE_DIR", "example_images", "package_path"]
