"""torchvision's DeepLabV3 ResNet-50/101 COCO weights (`.pth`)."""

from deeplab_keras.data.classes import VOC_CLASSES
from deeplab_keras.layers.preprocessing import IMAGENET_MEAN
from deeplab_keras.layers.preprocessing import IMAGENET_STD
from deeplab_keras.weights.records.papers import V3_PAPER
from deeplab_keras.weights.specs import Metric
from deeplab_keras.weights.specs import Preprocessing
from deeplab_keras.weights.specs import WeightRecord

RECORDS = []

# torchvision DeepLabV3 (torchvision/models/segmentation/deeplabv3.py). ImageNet mean/std, RGB.
TV_PRE = Preprocessing(
    mean=IMAGENET_MEAN, std=IMAGENET_STD, channel_order="rgb",
    input_size=(520, 520), resize="resize-short-side",
    source="torchvision SemanticSegmentation(resize_size=520): ImageNet mean/std "
           "(0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) in 0..1 units")
TV_SOURCE = ("torchvision/models/segmentation/deeplabv3.py, "
             "{}.COCO_WITH_VOC_LABELS_V1 meta")
TV_KWARGS = dict(output_stride=8, head="torchvision")
TV_NOTE = ("torchvision publishes the first 8 hex digits of the file's sha256 in its name; the "
           "full sha256 is recorded once the file has converted. The `.pth` is read without "
           "executing pickled code, in torch's zip format or its legacy (pre-1.6) format. The "
           "auxiliary FCN head is not converted (inference does not use it).")
TV_FORMAT = {
    "101": "saved before torch 1.6 (shipped with torchvision 0.3, vision PR #1554), so in the "
           "legacy format: read by the legacy reader, checked against torch.save files of both "
           "formats in the parity tier",
    "50": "published April 2020 (vision PR #2086); its torch format is not known: both are "
          "read, checked against torch.save files of both formats in the parity tier",
}

for depth, prefix, miou, params in (("101", "586e9e4e", 67.4, 58_739_925),
                                    ("50", "cd0a2569", 66.4, 39_695_573)):
    weights_enum = f"DeepLabV3_ResNet{depth}_Weights"
    RECORDS.append(WeightRecord(
        name=f"deeplabv3_resnet{depth}_coco",
        summary=f"torchvision DeepLabV3 ResNet-{depth} (COCO subset with the 20 VOC classes)",
        architecture="DeepLabV3",
        arch_kwargs=dict(backbone=f"resnet{depth}_v1_5", **TV_KWARGS),
        num_classes=21, class_names=VOC_CLASSES, palette="voc", preprocessing=TV_PRE,
        metrics=(
            Metric("mIoU", miou, "COCO val2017 (VOC labels)", "resize 520, single scale",
                   TV_SOURCE.format(weights_enum)),
            Metric("pixel accuracy", 92.4, "COCO val2017 (VOC labels)",
                   "resize 520, single scale", TV_SOURCE.format(weights_enum)),
        ),
        urls=(f"https://download.pytorch.org/models/deeplabv3_resnet{depth}_coco-{prefix}.pth",),
        file_format="torch-pth", sha256_prefix=prefix, tofu=True, converter="torchvision",
        license="BSD-3-Clause (torchvision)", paper=V3_PAPER,
        num_params=params, notes=(TV_NOTE, f"File format: {TV_FORMAT[depth]}."),
        verified=(f"URL, sha256 prefix and metrics: {TV_SOURCE.format(weights_enum)}",
                  "tensor names and shapes: torchvision's own deeplabv3_resnet"
                  f"{depth}(aux_loss=True) state dict (tests/test_convert_torch_pth.py, "
                  "parity tier)"),
        unverified=("the full sha256 (only its first 8 hex digits are published)",
                    "the file's torch format" if depth == "50" else
                    "the file's bytes (the format follows from its date)"),
    ))
