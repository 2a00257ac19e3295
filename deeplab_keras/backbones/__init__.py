"""Backbones with an output stride: `deeplab_keras.backbones.<name>(output_stride=...)`."""

from deeplab_keras.backbones.base import Backbone
from deeplab_keras.backbones.mobilenet_v2 import MobileNetV2Backbone
from deeplab_keras.backbones.mobilenet_v2 import mobilenetv2
from deeplab_keras.backbones.output_stride import AtrousTracker
from deeplab_keras.backbones.resnet import ResNetBackbone
from deeplab_keras.backbones.resnet import resnet50
from deeplab_keras.backbones.resnet import resnet50_slim
from deeplab_keras.backbones.resnet import resnet50_v1_5
from deeplab_keras.backbones.resnet import resnet101
from deeplab_keras.backbones.resnet import resnet101_slim
from deeplab_keras.backbones.resnet import resnet101_v1_5
from deeplab_keras.backbones.vgg import VGG16LargeFOVBackbone
from deeplab_keras.backbones.vgg import vgg16_largefov
from deeplab_keras.backbones.xception import XceptionBackbone
from deeplab_keras.backbones.xception import xception65

BACKBONES = {
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet50_v1_5": resnet50_v1_5,
    "resnet101_v1_5": resnet101_v1_5,
    "resnet50_slim": resnet50_slim,
    "resnet101_slim": resnet101_slim,
    "vgg16_largefov": vgg16_largefov,
    "xception65": xception65,
    "mobilenetv2": mobilenetv2,
}


def list_backbones():
    """Names accepted by `get` and by the models' `backbone=` argument."""
    return sorted(BACKBONES)


def get(name, output_stride=None, **kwargs):
    """Builds backbone `name`; `output_stride=None` uses the backbone's default."""
    if name not in BACKBONES:
        import difflib

        close = difflib.get_close_matches(str(name), BACKBONES, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(f"Unknown backbone {name!r}.{hint} Available: {list_backbones()}.")
    if output_stride is not None:
        kwargs["output_stride"] = output_stride
    return BACKBONES[name](**kwargs)


__all__ = [
    "AtrousTracker", "Backbone", "MobileNetV2Backbone", "ResNetBackbone",
    "VGG16LargeFOVBackbone", "XceptionBackbone", "get", "list_backbones", *BACKBONES,
]
