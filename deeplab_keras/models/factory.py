"""Named architectures (random weights): `build("deeplabv3plus_mobilenetv2", num_classes=11)`.

The pretrained-weight registry builds on these names; here they only fix the architecture.
"""

import difflib

from deeplab_keras.models.deeplab_v2 import DeepLabV1
from deeplab_keras.models.deeplab_v2 import DeepLabV2
from deeplab_keras.models.deeplab_v3 import DeepLabV3
from deeplab_keras.models.deeplab_v3_plus import DeepLabV3Plus

ARCHITECTURES = {
    "deeplabv1_vgg16": lambda n, **kw: DeepLabV1(num_classes=n, **kw),
    "deeplabv2_resnet101": lambda n, **kw: DeepLabV2(backbone="resnet101", aspp="L",
                                                     num_classes=n, **kw),
    "deeplabv2_vgg16": lambda n, **kw: DeepLabV2(backbone="vgg16", aspp="L", num_classes=n, **kw),
    "deeplabv3_resnet50": lambda n, **kw: DeepLabV3(backbone="resnet50_v1_5", num_classes=n,
                                                    **kw),
    "deeplabv3_resnet101": lambda n, **kw: DeepLabV3(backbone="resnet101_v1_5", num_classes=n,
                                                     **kw),
    "deeplabv3_mobilenetv2": lambda n, **kw: DeepLabV3(backbone="mobilenetv2", num_classes=n,
                                                       **kw),
    "deeplabv3plus_resnet50": lambda n, **kw: DeepLabV3Plus(backbone="resnet50_v1_5",
                                                            num_classes=n, **kw),
    "deeplabv3plus_xception65": lambda n, **kw: DeepLabV3Plus(backbone="xception65",
                                                              num_classes=n, **kw),
    "deeplabv3plus_mobilenetv2": lambda n, **kw: DeepLabV3Plus(backbone="mobilenetv2",
                                                               num_classes=n, **kw),
}


def list_architectures():
    return sorted(ARCHITECTURES)


def build(name, num_classes, **kwargs):
    """Builds a named architecture with random weights.

    Example:

    ```python
    model = deeplab_keras.models.build("deeplabv3plus_mobilenetv2", num_classes=11)
    ```
    """
    if name not in ARCHITECTURES:
        close = difflib.get_close_matches(name, ARCHITECTURES, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(f"Unknown architecture {name!r}.{hint} Known: {list_architectures()}.")
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1; received {num_classes}.")
    return ARCHITECTURES[name](int(num_classes), **kwargs)
