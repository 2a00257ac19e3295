"""ImageNet backbones from keras.applications (`backbone_weights="imagenet"`)."""

from deeplab_keras.layers.preprocessing import KERAS_CAFFE_BGR_MEAN
from deeplab_keras.layers.preprocessing import NO_STD
from deeplab_keras.layers.preprocessing import UNIT_RANGE_MEAN
from deeplab_keras.layers.preprocessing import UNIT_RANGE_STD
from deeplab_keras.weights.specs import BackboneWeights
from deeplab_keras.weights.specs import Preprocessing

KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"
# keras.applications "caffe" mode: BGR, minus the ImageNet mean, no scaling.
KERAS_CAFFE_PRE = Preprocessing(
    mean=KERAS_CAFFE_BGR_MEAN, std=NO_STD, channel_order="bgr",
    input_size=(224, 224), resize="resize-short-side",
    source="keras.applications imagenet_utils.preprocess_input(mode='caffe')")
KERAS_TF_PRE = Preprocessing(
    mean=UNIT_RANGE_MEAN, std=UNIT_RANGE_STD, channel_order="rgb",
    input_size=(224, 224), resize="resize-short-side",
    source="keras.applications imagenet_utils.preprocess_input(mode='tf')")

# md5 values: keras/src/applications/resnet.py WEIGHTS_HASHES (no-top) and vgg16.py.
BACKBONE_WEIGHTS = {
    "resnet50": BackboneWeights(
        "resnet50", "ResNet50", {},
        KERAS_APPS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626", KERAS_CAFFE_PRE,
        "as distributed by keras.applications (ported MSRA ResNet weights)"),
    "resnet101": BackboneWeights(
        "resnet101", "ResNet101", {},
        KERAS_APPS + "resnet/resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "88cf7a10940856eca736dc7b7e228a21", KERAS_CAFFE_PRE,
        "as distributed by keras.applications (ported MSRA ResNet weights)"),
    "vgg16_largefov": BackboneWeights(
        "vgg16_largefov", "VGG16", {},
        KERAS_APPS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc", KERAS_CAFFE_PRE,
        "as distributed by keras.applications (Oxford VGG weights, CC BY 4.0)"),
    "mobilenetv2": BackboneWeights(
        "mobilenetv2", "MobileNetV2", dict(alpha=1.0),
        KERAS_APPS + "mobilenet_v2/"
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        None, KERAS_TF_PRE, "as distributed by keras.applications (Apache-2.0)"),
}
