"""deeplab-keras: the DeepLab family (v1, v2, v3, v3+) for Keras 3.

Example:

```python
import deeplab_keras as dk
model = dk.models.DeepLabV3(backbone="resnet101_v1_5", output_stride=8, num_classes=21)
logits = model.predict(images)  # RGB float32 in 0..255, any size -> logits at input size
```
"""

from deeplab_keras import backbones
from deeplab_keras import convert
from deeplab_keras import data
from deeplab_keras import evaluation
from deeplab_keras import layers
from deeplab_keras import models
from deeplab_keras import ops
from deeplab_keras import train
from deeplab_keras import visualize
from deeplab_keras import weights
from deeplab_keras.inference import Segmentation
from deeplab_keras.inference import segment
from deeplab_keras.version import __version__
from deeplab_keras.weights.loading import load_model
from deeplab_keras.weights.registry import get_record
from deeplab_keras.weights.registry import list_models
from deeplab_keras.weights.registry import model_card

__all__ = ["Segmentation", "__version__", "backbones", "convert", "data", "evaluation",
           "get_record", "layers", "list_models", "load_model", "model_card", "models", "ops",
           "segment", "train", "visualize", "weights"]
