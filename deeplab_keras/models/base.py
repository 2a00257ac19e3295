"""What every DeepLab model shares: input, normalisation, upsampled logits, the base class,
and the wrappers (`MSC`, `CRFRefined`) with `unwrap` to reach the model inside them."""

import keras

from deeplab_keras import backbones as backbones_lib
from deeplab_keras.backbones.base import ConfiguredModel
from deeplab_keras.layers import preprocessing
from deeplab_keras.layers.preprocessing import ImageNormalization
from deeplab_keras.layers.resize import ResizeLike

IMAGENET_MEAN = preprocessing.IMAGENET_MEAN
IMAGENET_STD = preprocessing.IMAGENET_STD


def resolve_backbone(backbone, output_stride, backbone_kwargs, who):
    """Returns a `Backbone` from a name, a serialized config or an instance."""
    if isinstance(backbone, dict):
        backbone = keras.saving.deserialize_keras_object(backbone)
    if isinstance(backbone, str):
        return backbones_lib.get(backbone, output_stride=output_stride, **(backbone_kwargs or {}))
    if not isinstance(backbone, backbones_lib.Backbone):
        raise TypeError(f"{who}: `backbone` must be a name from "
                        f"{backbones_lib.list_backbones()} or a Backbone; received {backbone!r}.")
    if backbone_kwargs:
        raise ValueError(f"{who}: `backbone_kwargs` only applies when `backbone` is a name.")
    if output_stride is not None and backbone.output_stride != output_stride:
        raise ValueError(f"{who}: output_stride={output_stride} but the given backbone was "
                         f"built with output_stride={backbone.output_stride}.")
    return backbone


def image_input():
    return keras.Input((None, None, 3), name="images", dtype="float32")


def normalize(images, mean, std, channel_order):
    return ImageNormalization(mean=mean, std=std, channel_order=channel_order,
                              name="normalization")(images)


def finish_logits(logits, images, upsample_logits, align_corners):
    """Upsamples to the input size if asked and returns float32 logits."""
    if upsample_logits:
        logits = ResizeLike(align_corners=align_corners, name="upsample")([logits, images])
    return keras.layers.Activation("linear", dtype="float32", name="logits")(logits)


class DeepLabModel(ConfiguredModel):
    """Base of the DeepLab models: a functional model with a stored config.

    Subclasses build their graph in `__init__`, then call `_init_model` with their
    constructor arguments (see `ConfiguredModel`).
    """

    def _init_model(self, inputs, outputs, config, backbone=None, **kwargs):
        super()._init_model(inputs, outputs, config, **kwargs)
        if backbone is not None:
            self.backbone = backbone
            self.num_classes = int(config["num_classes"])
            self.output_stride = backbone.output_stride


class WrapperModel(DeepLabModel):
    """A model around another segmentation model (`MSC`, `CRFRefined`): `.model` is the inner
    one."""

    def _init_wrapper(self, inputs, outputs, config, model, **kwargs):
        self._init_model(inputs, outputs, dict(config, model=model), **kwargs)
        self.model = model
        self.num_classes = getattr(model, "num_classes", None)


def unwrap(model):
    """The DeepLab model inside any `MSC` / `CRFRefined` wrappers (the model itself if none).

    Example:

    ```python
    unwrap(MSC(CRFRefined(net))) is net   # True
    unwrap(model).backbone                # the backbone of a wrapped model
    ```
    """
    while isinstance(model, WrapperModel):
        model = model.model
    return model
