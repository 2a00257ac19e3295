"""Evaluation: prediction with multi-scale / flip / sliding window, and mIoU over a dataset.

* `predict`: `predict_probabilities(model, image, ...)`, `predict_logits`, `tile_starts`.
* `evaluate`: `evaluate(model, examples, num_classes, ...)`: mIoU, per-class IoU, a table.
* `confusion`: `ConfusionMatrix` in numpy.

Example:

```python
from deeplab_keras import evaluation

probs = evaluation.predict_probabilities(model, image, scales=(0.75, 1.0, 1.25), flip=True)
result = evaluation.evaluate(model, examples, num_classes=11)
```
"""

from deeplab_keras.evaluation.confusion import ConfusionMatrix
from deeplab_keras.evaluation.evaluate import evaluate
from deeplab_keras.evaluation.predict import predict_logits
from deeplab_keras.evaluation.predict import predict_probabilities
from deeplab_keras.evaluation.predict import tile_starts

__all__ = ["ConfusionMatrix", "evaluate", "predict_logits", "predict_probabilities",
           "tile_starts"]
