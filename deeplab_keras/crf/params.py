"""Dense-CRF parameters: one named tuple and the named presets, written once.

The five numbers of the fully connected CRF (Krähenbühl & Koltun 2011, as DeepLab uses it):
`w1` (appearance weight), `theta_alpha` (its spatial std, pixels), `theta_beta` (its colour std),
`w2` (smoothness weight), `theta_gamma` (its spatial std). The layer
(`deeplab_keras.layers.DenseCRF.from_params`), the weight records and the evaluation scripts all
read them from here.

Example:

```python
from deeplab_keras.crf import params

params.preset("deeplab_resnet101_voc")          # CRFParams(4.0, 67.0, 3.0, 3.0, 1.0)
params.as_params((10, 80, 13, 3, 3)).theta_beta  # 13.0
```
"""

import math
from typing import NamedTuple


class CRFParams(NamedTuple):
    """(w1, theta_alpha, theta_beta, w2, theta_gamma); compares equal to the plain 5-tuple."""

    appearance_weight: float
    theta_alpha: float
    theta_beta: float
    smoothness_weight: float
    theta_gamma: float

    def describe(self):
        """'(w1, theta_alpha, theta_beta, w2, theta_gamma) = (4, 67, 3, 3, 1)'."""
        return ("(w1, theta_alpha, theta_beta, w2, theta_gamma) = ("
                + ", ".join(f"{v:g}" for v in self) + ")")


PRESETS = {
    # DeepLab v2 release, ResNet-101 on VOC (kazuto1011/deeplab-pytorch configs/voc12.yaml).
    "deeplab_resnet101_voc": CRFParams(4.0, 67.0, 3.0, 3.0, 1.0),
    # DeepLab v1 LargeFOV (third-party copies of the v1 values; see its weight record).
    "deeplab_v1_largefov_voc": CRFParams(4.0, 121.0, 5.0, 3.0, 3.0),
    # DeepLab v2 VGG-16 (third-party config; see shared reference notes).
    "deeplab_vgg16_voc": CRFParams(4.0, 65.0, 3.0, 2.0, 2.0),
    # pydensecrf's README example (bilateral sxy 80, srgb 13, compat 10; Gaussian sxy 3, compat 3).
    "pydensecrf_readme": CRFParams(10.0, 80.0, 13.0, 3.0, 3.0),
    # Tuned on CamVid val for the bundled deeplabv3plus_mobilenetv2_camvid (its model card).
    "deeplabv3plus_mobilenetv2_camvid": CRFParams(6.0, 100.0, 13.0, 1.0, 1.0),
    # Tuned on CamVid val for deeplabv3plus_resnet50w40_camvid (its model card).
    "deeplabv3plus_resnet50w40_camvid": CRFParams(4.0, 40.0, 3.0, 3.0, 1.0),
}


def preset(name):
    """The `CRFParams` of a named preset; ValueError listing the presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"Unknown DenseCRF preset {name!r}; available: {sorted(PRESETS)}.")
    return PRESETS[name]


def as_params(value):
    """`CRFParams` from a preset name, five numbers or a `CRFParams`, checked.

    Raises ValueError naming the value when it is not five finite numbers with positive thetas.
    """
    if isinstance(value, str):
        return preset(value)
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"CRF parameters must be a preset name ({sorted(PRESETS)}) or five "
                         "numbers (w1, theta_alpha, theta_beta, w2, theta_gamma); received "
                         f"{value!r}.") from error
    if len(numbers) != 5 or not all(math.isfinite(v) for v in numbers):
        raise ValueError("CRF parameters must be five finite numbers (w1, theta_alpha, "
                         f"theta_beta, w2, theta_gamma); received {value!r}.")
    params = CRFParams(*numbers)
    for name in ("theta_alpha", "theta_beta", "theta_gamma"):
        if not getattr(params, name) > 0:
            raise ValueError(f"CRF parameter {name} must be > 0; received {params}.")
    return params


__all__ = ["CRFParams", "PRESETS", "as_params", "preset"]
