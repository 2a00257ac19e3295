"""Wrap any segmentation model so that it outputs dense-CRF-refined logits."""

import keras

from deeplab_keras.layers.dense_crf import DenseCRF
from deeplab_keras.models import base


@keras.saving.register_keras_serializable(package="deeplab_keras")
class CRFRefined(base.WrapperModel):
    """`images -> model(images) -> DenseCRF([logits, images])`.

    The CRF needs the image as well as the logits, which is why it is a
    wrapper rather than a layer appended to the model.

    Args:
        model: a segmentation model taking RGB 0..255 images and returning
            logits at input resolution (any `deeplab_keras` model).
        crf: a `DenseCRF` layer or a preset name (default
            "deeplab_resnet101_voc").

    Example:

    ```python
    refined = deeplab_keras.models.CRFRefined(model, "deeplab_resnet101_voc")
    labels = refined.predict(images).argmax(-1)
    ```
    """

    def __init__(self, model, crf="deeplab_resnet101_voc", **kwargs):
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if isinstance(crf, dict):
            crf = keras.saving.deserialize_keras_object(crf)
        if isinstance(crf, str):
            crf = DenseCRF.from_preset(crf)
        if not isinstance(crf, DenseCRF):
            raise TypeError(f"CRFRefined: `crf` must be a DenseCRF or a preset name; got {crf!r}.")
        images = base.image_input()
        logits = model(images)
        refined = crf([logits, images])
        self._init_wrapper(images, refined, dict(crf=crf), model, **kwargs)
        self.crf = crf
