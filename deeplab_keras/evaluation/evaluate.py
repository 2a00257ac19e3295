"""Mean IoU of a model over a dataset, image by image (multi-scale, flip, sliding window).

Example:

```python
result = deeplab_keras.evaluation.evaluate(model, examples, num_classes=11)
print(result["table"])
```
"""

import keras
import numpy as np

from deeplab_keras.evaluation.confusion import ConfusionMatrix
from deeplab_keras.evaluation.predict import predict_probabilities


def _progress_target(examples, num_examples):
    if num_examples is not None:
        return int(num_examples)
    try:
        return len(examples)
    except TypeError:
        return None


def evaluate(model, examples, num_classes, ignore_label=255, scales=(1.0,), flip=False,
             crop_size=None, stride=None, batch_size=4, class_names=None, progress=True,
             num_examples=None):
    """Mean IoU of `model` over (name, image, mask) examples; no image is skipped.

    Each image is predicted with `predict_probabilities` (so multi-scale, flip and
    sliding window apply), its argmax compared with the mask pixel by pixel
    in a `ConfusionMatrix` (pixels equal to `ignore_label` skipped; other
    out-of-range mask values raise). A failing example raises `RuntimeError`
    naming it, chained to the cause.

    Args:
        model: a segmentation model (see `predict_probabilities`).
        examples: an iterable of `(name, image, mask)`: image uint8/float
            `[H, W, 3]` RGB 0..255, mask int `[H, W]` (or `[H, W, 1]`), e.g.
            `deeplab_keras.data.iterate_eval(...)`.
        num_classes: number of classes.
        ignore_label: mask value to skip (None for none).
        scales, flip, crop_size, stride, batch_size: see `predict_probabilities`.
        class_names: optional names for `per_class_iou` and the table.
        progress: show a `keras.utils.Progbar` with the running mIoU.
        num_examples: expected count (for the progress bar when `examples`
            has no `len`); if given and a different number arrives, raises.

    Returns:
        dict with `miou`, `per_class_iou` (name -> IoU, NaN for a class in
        neither masks nor predictions), `pixel_accuracy`, `num_images`,
        `confusion` (int64 `[C, C]`, rows true, columns predicted) and
        `table` (printable per-class IoU).

    Example:

    ```python
    result = deeplab_keras.evaluation.evaluate(
        model, deeplab_keras.data.iterate_eval(examples, layout), num_classes=11,
        ignore_label=layout.ignore_label, class_names=layout.class_names)
    print(result["table"])
    ```
    """
    cm = ConfusionMatrix(num_classes, ignore_label, class_names)
    target = _progress_target(examples, num_examples)
    bar = keras.utils.Progbar(target, unit_name="image", stateful_metrics=["mIoU"]) if (
        progress) else None
    count = 0
    for item in examples:
        try:
            name, image, mask = item
        except (TypeError, ValueError) as error:
            raise ValueError(f"evaluate: example #{count} is not a (name, image, mask) "
                             f"triple.") from error
        try:
            mask = np.asarray(mask)
            if mask.ndim == 3 and mask.shape[-1] == 1:
                mask = mask[..., 0]
            image = np.asarray(image)
            if mask.shape != image.shape[:2]:
                raise ValueError(f"mask shape {mask.shape} does not match image shape "
                                 f"{image.shape}.")
            probs = predict_probabilities(model, image, scales=scales, flip=flip,
                                          crop_size=crop_size, stride=stride,
                                          batch_size=batch_size)
            if probs.shape[-1] != cm.num_classes:
                raise ValueError(f"the model predicts {probs.shape[-1]} classes but "
                                 f"num_classes={cm.num_classes}.")
            cm.update(mask, probs.argmax(-1))
        except Exception as error:
            raise RuntimeError(f"evaluate: example #{count} ({name!r}) failed: "
                               f"{type(error).__name__}: {error}") from error
        count += 1
        if bar is not None:
            bar.update(count, values=[("mIoU", cm.miou)])
    if count == 0:
        raise ValueError("evaluate: `examples` yielded no images; check the split and the "
                         "data directory.")
    if num_examples is not None and count != int(num_examples):
        raise ValueError(f"evaluate: expected {num_examples} examples but received {count}.")
    return dict(miou=cm.miou, per_class_iou=cm.per_class_dict(), pixel_accuracy=cm.pixel_accuracy(),
                num_images=count, confusion=cm.matrix.copy(), table=cm.table())


__all__ = ["evaluate"]
