"""DeepLab v1, v2, v3, v3+ and multi-scale inputs (MSC)."""

from deeplab_keras.models.base import DeepLabModel
from deeplab_keras.models.base import unwrap
from deeplab_keras.models.crf_refined import CRFRefined
from deeplab_keras.models.deeplab_v2 import DeepLabV1
from deeplab_keras.models.deeplab_v2 import DeepLabV2
from deeplab_keras.models.deeplab_v3 import DeepLabV3
from deeplab_keras.models.deeplab_v3_plus import DeepLabV3Plus
from deeplab_keras.models.factory import build
from deeplab_keras.models.factory import list_architectures
from deeplab_keras.models.msc import MSC
from deeplab_keras.models.precision import with_dtype_policy

__all__ = ["CRFRefined", "DeepLabModel", "DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus",
           "MSC", "build", "list_architectures", "unwrap", "with_dtype_policy"]
