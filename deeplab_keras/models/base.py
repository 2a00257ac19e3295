"""What every DeepLab model shares: input, normalisation, upsampled logits, the base class,
and the wrappers (`MSC`, `CRFRefined`) with `unwrap` to reach the model inside them."""

import importlib

import keras
import numpy as np

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


# backbone_weights name -> (prepare(class_name, kwargs) -> kwargs, apply(model)); the weights
# package registers "imagenet" (`weights.imagenet_backbones`), which downloads, so it plugs in
# from above instead of being imported here.
_BACKBONE_WEIGHTS = {}
_BACKBONE_WEIGHTS_PROVIDER = "deeplab_keras.weights.imagenet_backbones"


def register_backbone_weights(name, prepare, apply):
    """Makes `backbone_weights=name` available to every model constructor."""
    _BACKBONE_WEIGHTS[name] = (prepare, apply)


def _backbone_weights(name):
    if name not in _BACKBONE_WEIGHTS:
        importlib.import_module(_BACKBONE_WEIGHTS_PROVIDER)
    if name not in _BACKBONE_WEIGHTS:
        raise ValueError(f"backbone_weights must be None or one of {sorted(_BACKBONE_WEIGHTS)}; "
                         f"received {name!r}.")
    return _BACKBONE_WEIGHTS[name]


class DeepLabModel(ConfiguredModel):
    """Base of the DeepLab models: a functional model with a stored config.

    Subclasses build their graph in `__init__`, then call `_init_model` with their
    constructor arguments (see `ConfiguredModel`). Every model also takes:

    - `class_names`: one name per output class (stored in the config, so a `.keras` file
      carries them; default `class_0, class_1, ...`);
    - `palette`: `[num_classes, 3]` colours for pictures (stored the same way; default: the
      pictures' own, PASCAL VOC's colour map);
    - `backbone_weights`: e.g. "imagenet": pretrained backbone weights loaded after the model
      is built, with the input normalisation they expect unless `mean`/`std`/`channel_order`
      are given (never stored in the config: a reloaded model downloads nothing).
    """

    BASE_KWARGS = ConfiguredModel.BASE_KWARGS + ("class_names", "palette", "backbone_weights")

    @classmethod
    def _prepare_kwargs(cls, kwargs):
        kwargs = dict(kwargs)
        weights = kwargs.pop("backbone_weights", None)
        if weights is None:
            return kwargs, {}
        prepare, _ = _backbone_weights(weights)
        return prepare(cls.__name__, kwargs), {"backbone_weights": weights}

    def _after_build(self, backbone_weights=None):
        if backbone_weights is not None:
            _backbone_weights(backbone_weights)[1](self)

    def _init_model(self, inputs, outputs, config, backbone=None, class_names=None,
                    palette=None, **kwargs):
        super()._init_model(inputs, outputs, config, **kwargs)
        if backbone is not None:
            self.backbone = backbone
            self.num_classes = int(config["num_classes"])
            self.output_stride = backbone.output_stride
            self._config["class_names"] = _check_class_names(class_names, self.num_classes,
                                                              type(self).__name__)
            self._config["palette"] = _check_palette(palette, self.num_classes,
                                                     type(self).__name__)

    @property
    def class_names(self):
        """One name per output class (`class_0, ...` unless the model was given names)."""
        net = unwrap(self)
        return tuple(net._config.get("class_names") or
                     (f"class_{i}" for i in range(net.num_classes)))

    @property
    def palette(self):
        """`[num_classes, 3]` uint8 colours the model was given, or None."""
        colours = unwrap(self)._config.get("palette")
        return None if colours is None else np.asarray(colours, np.uint8)

    def predict(self, x, *args, **kwargs):
        _check_batch(x, type(self).__name__, "predict")
        return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x):
        _check_batch(x, type(self).__name__, "predict_on_batch")
        return super().predict_on_batch(x)


def _check_batch(x, who, method):
    """A clear error for one image passed where Keras expects a batch `[B, H, W, 3]`."""
    shape = getattr(x, "shape", None)  # arrays and tensors; datasets are Keras' to check
    if shape is None or len(shape) == 4:
        return
    hint = (" It looks like one image: pass image[None] (a batch of one), or use "
            "deeplab_keras.segment(model, image), which takes single images of any size."
            if len(shape) == 3 else "")
    raise ValueError(f"{who}.{method}: expected a batch of RGB images [B, H, W, 3]; received "
                     f"shape {tuple(shape)}.{hint}")


def _check_class_names(names, num_classes, who):
    if names is None:
        return None
    names = [str(n) for n in names]
    if len(names) != num_classes:
        raise ValueError(f"{who}: {len(names)} class_names for num_classes={num_classes}; give "
                         "one name per class.")
    return names


def _check_palette(palette, num_classes, who):
    if palette is None:
        return None
    colours = np.asarray(palette)
    if colours.shape != (num_classes, 3) or colours.min() < 0 or colours.max() > 255:
        raise ValueError(f"{who}: palette must be [{num_classes}, 3] values in 0..255; "
                         f"received shape {colours.shape}.")
    return colours.astype(int).tolist()


class WrapperModel(DeepLabModel):
    """A model around another segmentation model (`MSC`, `CRFRefined`): `.model` is the inner
    one, whose class names and palette it reports."""

    BASE_KWARGS = ConfiguredModel.BASE_KWARGS

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
