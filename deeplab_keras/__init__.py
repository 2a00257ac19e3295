"""deeplab-keras: the DeepLab family (v1, v2, v3, v3+) for Keras 3.

`import deeplab_keras` is cheap: submodules and the functions below load on first use (it
imports neither keras nor TensorFlow), and the package's Keras classes are registered for
`keras.saving.load_model` as soon as keras is imported (`deeplab_keras.keras_objects`).

Example:

```python
import deeplab_keras as dk
model = dk.models.DeepLabV3(backbone="resnet101_v1_5", output_stride=8, num_classes=21)
logits = model.predict(images)  # RGB float32 in 0..255, any size -> logits at input size
```
"""

from deeplab_keras import backend_choice
from deeplab_keras import keras_objects
from deeplab_keras import lazy
from deeplab_keras.version import __version__

__getattr__, __dir__, _lazy_names = lazy.attach(
    __name__,
    submodules=("assets", "backbones", "convert", "crf", "data", "deploy", "evaluation", "files",
                "inference", "labels", "layers", "models", "ops", "train", "visualize",
                "weights"),
    names={"export": "deploy", "Segmentation": "inference", "segment": "inference",
           "load_model": "weights.loading",
           "get_record": "weights.registry", "list_models": "weights.registry",
           "model_card": "weights.cards"})
__all__ = ["__version__", *_lazy_names]

backend_choice.choose_default_backend()
keras_objects.watch()
