"""The one name -> architecture table: `build("deeplabv3plus_mobilenetv2", num_classes=11)`.

Every door that builds a model by name goes through `build`: `dk.models.build`,
`dk.load_model` (a weight record names its family and arguments), `dk.weights.build_model` and
the CLI's `--model`. A name is an architecture (`list_architectures()`, a family with its
backbone fixed), a family ("deeplabv3") or a class name ("DeepLabV3").

Example:

```python
model = deeplab_keras.models.build("deeplabv3plus_mobilenetv2", num_classes=11)
model = deeplab_keras.models.build("deeplabv3", 21, backbone="xception65", output_stride=8)
```
"""

import difflib

from deeplab_keras.models.deeplab_v2 import DeepLabV1
from deeplab_keras.models.deeplab_v2 import DeepLabV2
from deeplab_keras.models.deeplab_v3 import DeepLabV3
from deeplab_keras.models.deeplab_v3_plus import DeepLabV3Plus

FAMILIES = {"deeplabv1": DeepLabV1, "deeplabv2": DeepLabV2, "deeplabv3": DeepLabV3,
            "deeplabv3plus": DeepLabV3Plus}

# name: (family, the constructor arguments the name fixes)
ARCHITECTURES = {
    "deeplabv1_vgg16": ("deeplabv1", {}),
    "deeplabv2_resnet101": ("deeplabv2", dict(backbone="resnet101", aspp="L")),
    "deeplabv2_vgg16": ("deeplabv2", dict(backbone="vgg16", aspp="L")),
    "deeplabv3_resnet50": ("deeplabv3", dict(backbone="resnet50_v1_5")),
    "deeplabv3_resnet101": ("deeplabv3", dict(backbone="resnet101_v1_5")),
    "deeplabv3_mobilenetv2": ("deeplabv3", dict(backbone="mobilenetv2")),
    "deeplabv3plus_resnet50": ("deeplabv3plus", dict(backbone="resnet50_v1_5")),
    "deeplabv3plus_xception65": ("deeplabv3plus", dict(backbone="xception65")),
    "deeplabv3plus_mobilenetv2": ("deeplabv3plus", dict(backbone="mobilenetv2")),
}


def list_architectures():
    """The architecture names `build` accepts (families and class names are accepted too)."""
    return sorted(ARCHITECTURES)


def resolve(name):
    """`(model class, fixed constructor arguments)` of an architecture, family or class name."""
    if name in ARCHITECTURES:
        family, fixed = ARCHITECTURES[name]
        return FAMILIES[family], dict(fixed)
    if name in FAMILIES:
        return FAMILIES[name], {}
    by_class = {cls.__name__: cls for cls in FAMILIES.values()}
    if name in by_class:
        return by_class[name], {}
    known = list_architectures() + sorted(FAMILIES) + sorted(by_class)
    close = difflib.get_close_matches(str(name), known, n=3)
    hint = f" Did you mean {close}?" if close else ""
    raise ValueError(f"Unknown architecture {name!r}.{hint} Known: {list_architectures()}, "
                     f"the families {sorted(FAMILIES)} and the classes {sorted(by_class)}.")


def build(name, num_classes, **kwargs):
    """Builds a named architecture with random weights.

    Args:
        name: an architecture ("deeplabv3plus_mobilenetv2"), a family ("deeplabv3") or a
            class name ("DeepLabV3").
        num_classes: output classes, background included.
        **kwargs: constructor arguments of the model class (those the name does not fix).

    Example:

    ```python
    model = deeplab_keras.models.build("deeplabv3plus_mobilenetv2", num_classes=11)
    ```
    """
    cls, fixed = resolve(name)
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1; received {num_classes}.")
    clash = {k: kwargs[k] for k in fixed if k in kwargs and kwargs[k] != fixed[k]}
    if clash:
        family = ARCHITECTURES[name][0]
        raise ValueError(f"{name!r} fixes {fixed}; received {clash}. Use the family "
                         f"{family!r} with the arguments you want instead.")
    return cls(num_classes=int(num_classes), **{**fixed, **kwargs})


__all__ = ["ARCHITECTURES", "FAMILIES", "build", "list_architectures", "resolve"]
