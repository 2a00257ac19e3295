"""Weight converters from other libraries' layouts into deeplab_keras models."""

from deeplab_keras.convert.common import ConversionError
from deeplab_keras.convert.common import ConversionReport
from deeplab_keras.convert.keras_applications import from_keras_applications
from deeplab_keras.convert.torchvision import from_torchvision

__all__ = ["ConversionError", "ConversionReport", "from_keras_applications", "from_torchvision"]
