"""Weight converters from other libraries' layouts into deeplab_keras models.

`dispatch.CONVERTERS` says which converter reads which format; `caffe_files`, `caffe_proto`,
`torch_pth` and `tf_slim` read the files, `caffe`, `torchvision`, `tf_slim` and
`keras_applications` map their tensors onto our layers.
"""

from deeplab_keras.convert.caffe import expected_caffe_layers
from deeplab_keras.convert.caffe import from_caffemodel
from deeplab_keras.convert.caffe_files import CaffeModelError
from deeplab_keras.convert.caffe_files import parse_caffemodel
from deeplab_keras.convert.caffe_files import read_caffemodel
from deeplab_keras.convert.caffe_files import read_caffemodel_layers
from deeplab_keras.convert.caffe_files import write_caffemodel
from deeplab_keras.convert.common import ConversionError
from deeplab_keras.convert.common import ConversionReport
from deeplab_keras.convert.keras_applications import from_keras_applications
from deeplab_keras.convert.tf_slim import from_tf_checkpoint
from deeplab_keras.convert.tf_slim import read_tf_checkpoint
from deeplab_keras.convert.torch_pth import TorchCheckpointError
from deeplab_keras.convert.torch_pth import UnsafePickleError
from deeplab_keras.convert.torch_pth import from_torchvision_file
from deeplab_keras.convert.torch_pth import load_torch_state_dict
from deeplab_keras.convert.torchvision import from_torchvision

__all__ = ["CaffeModelError", "ConversionError", "ConversionReport", "TorchCheckpointError",
           "UnsafePickleError", "expected_caffe_layers", "from_caffemodel",
           "from_keras_applications", "from_tf_checkpoint", "from_torchvision",
           "from_torchvision_file", "load_torch_state_dict", "parse_caffemodel",
           "read_caffemodel", "read_caffemodel_layers", "read_tf_checkpoint", "write_caffemodel"]
