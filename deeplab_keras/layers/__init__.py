"""Layers of the DeepLab family, written with `keras.ops` only."""

from deeplab_keras.layers.aspp import ASPP
from deeplab_keras.layers.aspp import aspp_rates
from deeplab_keras.layers.aspp_v2 import ASPPV2
from deeplab_keras.layers.aspp_v2 import aspp_v2_rates
from deeplab_keras.layers.atrous_conv import AtrousConv2D
from deeplab_keras.layers.atrous_conv import AtrousDepthwiseConv2D
from deeplab_keras.layers.batch_norm import BatchNorm
from deeplab_keras.layers.conv_bn import ConvBN
from deeplab_keras.layers.decoder import DeepLabV3PlusDecoder
from deeplab_keras.layers.dense_crf import DenseCRF
from deeplab_keras.layers.pooling import CaffePooling2D
from deeplab_keras.layers.preprocessing import ImageNormalization
from deeplab_keras.layers.resize import ResizeByScale
from deeplab_keras.layers.resize import ResizeLike

__all__ = [
    "ASPP", "ASPPV2", "AtrousConv2D", "AtrousDepthwiseConv2D", "BatchNorm", "CaffePooling2D",
    "ConvBN",
    "DeepLabV3PlusDecoder", "DenseCRF", "ImageNormalization", "ResizeByScale", "ResizeLike",
    "aspp_rates", "aspp_v2_rates",
]
