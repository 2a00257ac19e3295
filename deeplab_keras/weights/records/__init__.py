"""The registered weight sets, one file per source; `registry` reads `ALL`.

Sources of every value are given next to it. `num_params` is
`load_model(name, weights=False).count_params()` (all weights, BN moving
statistics included), computed once with Keras 3.15 on TensorFlow; the schema
test rebuilds each model (on each backend) and compares. torchvision's
published counts (42.0M / 61.0M) also include the auxiliary FCN head, which
is not converted, and leave out BN statistics.

- `caffe`: DeepLab v1 and v2, the authors' Caffe releases.
- `tf_research`: DeepLab v3 / v3+, TF research/deeplab's model zoo.
- `torchvision`: torchvision's DeepLabV3.
- `bundled`: trained by this project, shipped inside the package.
- `imagenet`: keras.applications ImageNet backbones (`BACKBONE_WEIGHTS`).
"""

from deeplab_keras.weights.records import bundled
from deeplab_keras.weights.records import caffe
from deeplab_keras.weights.records import tf_research
from deeplab_keras.weights.records import torchvision
from deeplab_keras.weights.records.imagenet import BACKBONE_WEIGHTS

ALL = tuple(caffe.RECORDS + tf_research.RECORDS + torchvision.RECORDS + bundled.RECORDS)

__all__ = ["ALL", "BACKBONE_WEIGHTS"]
