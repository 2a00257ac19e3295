"""DeepLab v3 / v3+ from TF research/deeplab's model zoo (TF1 tarballs)."""

import dataclasses

from deeplab_keras.data.classes import ADE20K_WITH_OTHER_CLASSES
from deeplab_keras.data.classes import CITYSCAPES_CLASSES
from deeplab_keras.data.classes import VOC_CLASSES
from deeplab_keras.layers.preprocessing import UNIT_RANGE_MEAN
from deeplab_keras.layers.preprocessing import UNIT_RANGE_STD
from deeplab_keras.weights.records.papers import MOBILENETV2_PAPER
from deeplab_keras.weights.records.papers import V3_PAPER
from deeplab_keras.weights.records.papers import V3PLUS_PAPER
from deeplab_keras.weights.specs import Metric
from deeplab_keras.weights.specs import Preprocessing
from deeplab_keras.weights.specs import WeightRecord

RECORDS = []

# TF research/deeplab model zoo (g3doc/model_zoo.md). Input: RGB, x / 127.5 - 1
# (`preprocess_utils` / `feature_extractor._preprocess_zero_mean_unit_range`).
TF_MEAN, TF_STD = UNIT_RANGE_MEAN, UNIT_RANGE_STD
TF_PRE_VOC = Preprocessing(
    mean=TF_MEAN, std=TF_STD, channel_order="rgb", input_size=(513, 513), resize="pad-crop",
    source="TF research/deeplab: inputs scaled to [-1, 1] (2/255 * x - 1); eval_crop_size 513")
TF_PRE_CITYSCAPES = dataclasses.replace(
    TF_PRE_VOC, input_size=(1025, 2049), resize="full-image",
    source="TF research/deeplab: inputs scaled to [-1, 1]; Cityscapes eval_crop_size 1025x2049")
TF_ZOO = "tensorflow/models research/deeplab/g3doc/model_zoo.md"
TF_LICENSE = "Apache-2.0 (tensorflow/models)"
TF_NOTE = ("No hash is published: the sha256 of the tarball is recorded once it has converted "
           "(trust on first use) and verified on every later use. Converting a TF1 checkpoint "
           "needs TensorFlow.")
ZOO_URLS = f"URL and published size: {TF_ZOO}"
XCEPTION_NAMES = ("TF-slim variable names (xception_65/..., aspp0..3, image_pooling, "
                  "concat_projection, decoder/..., logits/semantic): the names "
                  "nyoki-mtl/pytorch-segmentation src/converter/convert_xception65.py maps")
TF_UNVERIFIED = ("the tarball's byte size and sha256 (only a rounded size is published)",
                 "whether the checkpoint holds Momentum slots and global_step (converters "
                 "skip them; ours reports and skips them either way)")
# Xception-65 DeepLab v3+ as TF deeplab builds it: separable ASPP and decoder, image pooling
# first in the concatenation, BN epsilon 1e-5, TF1 align_corners resizing.
XCEPTION_V3PLUS = dict(backbone="xception65", output_stride=16, separable=True,
                       pooling_first=True, bn_epsilon=1e-5, align_corners=True,
                       mean=TF_MEAN, std=TF_STD, channel_order="rgb")

RECORDS.append(WeightRecord(
    name="deeplabv3plus_xception65_voc",
    summary="DeepLab v3+ Xception-65, COCO + VOC 2012 train_aug (xception_coco_voc_trainaug)",
    architecture="DeepLabV3Plus", arch_kwargs=dict(XCEPTION_V3PLUS),
    num_classes=21, class_names=VOC_CLASSES, palette="voc", preprocessing=TF_PRE_VOC,
    metrics=(
        Metric("mIoU", 82.20, "PASCAL VOC 2012 val", "eval OS 16, scale 1.0, no flip", TF_ZOO),
        Metric("mIoU", 83.58, "PASCAL VOC 2012 val", "eval OS 8, scales 0.5:0.25:1.75, flip",
               TF_ZOO),
    ),
    urls=("http://download.tensorflow.org/models/deeplabv3_pascal_train_aug_2018_01_04.tar.gz",),
    file_format="tf1-tarball", member="deeplabv3_pascal_train_aug/model.ckpt", tofu=True,
    converter="tf_slim", license=TF_LICENSE, paper=V3PLUS_PAPER,
    num_params=41_258_213,
    notes=(TF_NOTE, "Published size: 439 MB (model zoo)."),
    verified=(ZOO_URLS, "checkpoint deeplabv3_pascal_train_aug/model.ckpt: tensorflow/models "
              "research/deeplab/local_test.sh (--tf_initial_checkpoint)", XCEPTION_NAMES,
              f"metrics: {TF_ZOO}"),
    unverified=TF_UNVERIFIED,
))

RECORDS.append(WeightRecord(
    name="deeplabv3plus_xception65_cityscapes",
    summary="DeepLab v3+ Xception-65, ImageNet + Cityscapes train_fine",
    architecture="DeepLabV3Plus", arch_kwargs=dict(XCEPTION_V3PLUS),
    num_classes=19, class_names=CITYSCAPES_CLASSES, palette="cityscapes",
    preprocessing=TF_PRE_CITYSCAPES,
    metrics=(
        Metric("mIoU", 78.79, "Cityscapes val", "eval OS 16, scale 1.0, no flip", TF_ZOO),
        Metric("mIoU", 80.42, "Cityscapes val", "eval OS 8, scales 0.75:0.25:1.25, flip",
               TF_ZOO),
    ),
    urls=("http://download.tensorflow.org/models/deeplabv3_cityscapes_train_2018_02_06.tar.gz",),
    file_format="tf1-tarball", member="deeplabv3_cityscapes_train/model.ckpt", tofu=True,
    converter="tf_slim", license=TF_LICENSE, paper=V3PLUS_PAPER,
    num_params=41_257_699,
    notes=(TF_NOTE, "Published size: 439 MB (model zoo).",
           "An earlier version of this record named the member train_fine/model.ckpt, and "
           "a fallback to the archive's only checkpoint hid the mistake; members are now "
           "exact."),
    verified=(ZOO_URLS, "checkpoint deeplabv3_cityscapes_train/model.ckpt: the "
              "nyoki-mtl/pytorch-segmentation README (tar -xvf, then convert_xception65 "
              "../tf_model/deeplabv3_cityscapes_train/model.ckpt 19)", XCEPTION_NAMES,
              f"metrics: {TF_ZOO}"),
    unverified=TF_UNVERIFIED,
))

RECORDS.append(WeightRecord(
    name="deeplabv3plus_xception65_ade20k",
    summary="DeepLab v3+ Xception-65, ImageNet + ADE20K train (150 classes + 'other')",
    architecture="DeepLabV3Plus", arch_kwargs=dict(XCEPTION_V3PLUS),
    num_classes=151, class_names=ADE20K_WITH_OTHER_CLASSES, palette="voc", preprocessing=TF_PRE_VOC,
    metrics=(
        Metric("mIoU", 45.65, "ADE20K val", "eval OS 8, scales 0.5:0.25:1.75, flip", TF_ZOO),
        Metric("pixel accuracy", 82.52, "ADE20K val", "eval OS 8, scales 0.5:0.25:1.75, flip",
               TF_ZOO),
    ),
    urls=("http://download.tensorflow.org/models/"
          "deeplabv3_xception_ade20k_train_2018_05_29.tar.gz",),
    file_format="tf1-tarball", member="deeplabv3_xception_ade20k_train/model.ckpt", tofu=True,
    converter="tf_slim", license=TF_LICENSE, paper=V3PLUS_PAPER,
    num_params=41_291_623,
    notes=(TF_NOTE, "Published size: 439 MB (model zoo).",
           "Output 0 is ADE20K's 'other' label, which evaluation ignores; colours use the VOC "
           "bit-interleaved colour map, not ADE20K's own table."),
    verified=(ZOO_URLS, "checkpoint deeplabv3_xception_ade20k_train/model.ckpt and 151 "
              "classes: duducheng/deeplabv3p_gluon's converter (CKPT, CLASSES = 151)",
              XCEPTION_NAMES, f"metrics: {TF_ZOO}"),
    unverified=TF_UNVERIFIED,
))

RECORDS.append(WeightRecord(
    name="deeplabv3_mobilenetv2_voc",
    summary="DeepLab v3 MobileNetV2 (no ASPP rates, no decoder), COCO + VOC 2012 train_aug",
    architecture="DeepLabV3",
    arch_kwargs=dict(backbone="mobilenetv2", output_stride=16, aspp_rates=(), image_pooling=True,
                     pooling_first=True, bn_epsilon=1e-5, align_corners=True, mean=TF_MEAN,
                     std=TF_STD, channel_order="rgb",
                     backbone_kwargs=dict(padding="same")),
    num_classes=21, class_names=VOC_CLASSES, palette="voc", preprocessing=TF_PRE_VOC,
    metrics=(
        Metric("mIoU", 75.32, "PASCAL VOC 2012 val", "eval OS 16, scale 1.0, no flip", TF_ZOO),
        Metric("mIoU", 77.33, "PASCAL VOC 2012 val", "eval OS 8, scales 0.5:0.25:1.75, flip",
               TF_ZOO),
    ),
    urls=("http://download.tensorflow.org/models/deeplabv3_mnv2_pascal_train_aug_2018_01_29.tar.gz",),
    file_format="tf1-tarball", member="deeplabv3_mnv2_pascal_train_aug/model.ckpt-30000",
    tofu=True, converter="tf_slim", license=TF_LICENSE,
    paper=V3_PAPER + "; " + MOBILENETV2_PAPER,
    num_params=2_146_645,
    notes=(TF_NOTE, "Published size: 23 MB (model zoo).",
           "The model zoo's MobileNet-v2 models use no atrous ASPP branches and no decoder: "
           "image pooling + 1x1 branch, concatenated and projected.",
           "Its stride-2 convs pad as TF's 'SAME' does (more at the end on even sizes): "
           "research/deeplab's feature extractor never sets `use_explicit_padding`."),
    verified=(ZOO_URLS, "checkpoint deeplabv3_mnv2_pascal_train_aug/model.ckpt-30000: "
              "tensorflow/models research/deeplab/local_test_mobilenetv2.sh",
              "TF 'SAME' padding: research/deeplab/core/feature_extractor.py calls "
              "mobilenet_base without use_explicit_padding (slim default False)",
              "TF-slim variable names (MobilenetV2/Conv, expanded_conv_N/{expand,depthwise,"
              "project}, aspp0, image_pooling, concat_projection, logits/semantic): the names "
              "nyoki-mtl/pytorch-segmentation src/converter/convert_mobilenetv2.py maps",
              f"metrics: {TF_ZOO}"),
    unverified=TF_UNVERIFIED,
))
