"""DeepLab v2 from the authors' Caffe release (`prototxt_and_model.zip`)."""

from deeplab_keras.crf.params import PRESETS
from deeplab_keras.data.classes import VOC_CLASSES
from deeplab_keras.layers.preprocessing import CAFFE_DEEPLAB_BGR_MEAN
from deeplab_keras.layers.preprocessing import NO_STD
from deeplab_keras.weights.records.papers import V2_PAPER
from deeplab_keras.weights.specs import Metric
from deeplab_keras.weights.specs import Preprocessing
from deeplab_keras.weights.specs import WeightRecord

RECORDS = []

# DeepLab v2, Caffe release. Input: BGR, minus the mean, 0..255 (`test.prototxt` mean_value).
CAFFE_PRE = Preprocessing(
    mean=CAFFE_DEEPLAB_BGR_MEAN, std=NO_STD, channel_order="bgr", input_size=(513, 513),
    resize="pad-crop",
    source="DeepLab v2 test prototxt: mean_value 104.008/116.669/122.675 (BGR), crop_size 513")
CAFFE_V2_KWARGS = dict(output_stride=8, mean=CAFFE_DEEPLAB_BGR_MEAN, std=NO_STD,
                       channel_order="bgr")
CAFFE_LICENSE = ("not stated by the release; research code and weights from the DeepLab "
                 "authors (check with them before commercial use)")
CAFFE_NOTE = ("No hash is published: the sha256 of the zip is recorded on first download and "
              "verified on every later use.")

RECORDS.append(WeightRecord(
    name="deeplab_resnet101_voc",
    summary="DeepLab v2 ResNet-101 ASPP-L + MSC, COCO-pretrained, VOC 2012 train_aug",
    architecture="DeepLabV2",
    arch_kwargs=dict(backbone="resnet101", aspp="L", **CAFFE_V2_KWARGS),
    msc_scales=(1.0, 0.75, 0.5),
    num_classes=21, class_names=VOC_CLASSES, palette="voc", preprocessing=CAFFE_PRE,
    crf=PRESETS["deeplab_resnet101_voc"],
    crf_source="kazuto1011/deeplab-pytorch configs/voc12.yaml (released DeepLab v2 values); "
               "DenseCRF.from_preset('deeplab_resnet101_voc')",
    metrics=(
        Metric("mIoU", 76.35, "PASCAL VOC 2012 val", "MSC (1, 0.75, 0.5), no CRF",
               "DeepLab v2 paper (arXiv:1606.00915); 'Official' row of the "
               "kazuto1011/deeplab-pytorch README"),
        Metric("mIoU", 77.69, "PASCAL VOC 2012 val", "MSC + dense CRF",
               "DeepLab v2 paper (arXiv:1606.00915); 'Official' row of the "
               "kazuto1011/deeplab-pytorch README"),
    ),
    urls=("http://liangchiehchen.com/projects/released/deeplab_aspp_resnet101/"
          "prototxt_and_model.zip",),
    file_format="caffemodel-zip", member="train_iter_20000.caffemodel", tofu=True,
    converter="caffe", license=CAFFE_LICENSE, paper=V2_PAPER,
    num_params=44_153_876,
    notes=(CAFFE_NOTE,
           "`train_iter_20000.caffemodel` is the train_aug model (the val scores); the zip also "
           "holds `train2_iter_20000.caffemodel` (trainval) and `init.caffemodel` (COCO).",
           "Batch norm is frozen in the release; the converted model keeps the statistics."),
))

RECORDS.append(WeightRecord(
    name="deeplab_vgg16_largefov_voc",
    summary="DeepLab v2 VGG-16 LargeFOV (fc6 rate 12), VOC 2012 train_aug",
    architecture="DeepLabV2",
    arch_kwargs=dict(backbone="vgg16", aspp="LargeFOV", **CAFFE_V2_KWARGS),
    num_classes=21, class_names=VOC_CLASSES, palette="voc", preprocessing=CAFFE_PRE,
    crf=PRESETS["deeplab_vgg16_voc"],
    crf_source="third-party DeepLab v2 VGG-16 configuration (see "
               "../shared/reference/deeplab-family.md); DenseCRF.from_preset('deeplab_vgg16_voc')",
    metrics=(
        Metric("mIoU", 65.76, "PASCAL VOC 2012 val", "single scale, no CRF",
               "DeepLab v2 paper (arXiv:1606.00915), VGG-16 results table", verified=False),
        Metric("mIoU", 69.84, "PASCAL VOC 2012 val", "single scale + dense CRF",
               "DeepLab v2 paper (arXiv:1606.00915), VGG-16 results table", verified=False),
    ),
    urls=("http://liangchiehchen.com/projects/released/deeplab_largefov/prototxt_and_model.zip",),
    file_format="caffemodel-zip", member="train_iter_20000.caffemodel", tofu=True,
    converter="caffe", license=CAFFE_LICENSE, paper=V2_PAPER,
    num_params=20_505_429,
    notes=(CAFFE_NOTE,
           "The URL and the member name follow the ASPP release's layout and were not checked "
           "against the release page here; if the member differs, the error lists the zip's "
           ".caffemodel members.",
           "Metric values are from a reading of the paper not re-checked against its text."),
))

RECORDS.append(WeightRecord(
    name="deeplab_vgg16_aspp_voc",
    summary="DeepLab v2 VGG-16 ASPP-L (rates 6/12/18/24, summed), VOC 2012 train_aug",
    architecture="DeepLabV2",
    arch_kwargs=dict(backbone="vgg16", aspp="L", **CAFFE_V2_KWARGS),
    num_classes=21, class_names=VOC_CLASSES, palette="voc", preprocessing=CAFFE_PRE,
    crf=PRESETS["deeplab_vgg16_voc"],
    crf_source="third-party DeepLab v2 VGG-16 configuration (see "
               "../shared/reference/deeplab-family.md); DenseCRF.from_preset('deeplab_vgg16_voc')",
    metrics=(
        Metric("mIoU", 68.96, "PASCAL VOC 2012 val", "single scale, no CRF",
               "DeepLab v2 paper (arXiv:1606.00915), VGG-16 ASPP-L row", verified=False),
        Metric("mIoU", 71.57, "PASCAL VOC 2012 val", "single scale + dense CRF",
               "DeepLab v2 paper (arXiv:1606.00915), VGG-16 ASPP-L row", verified=False),
    ),
    urls=("http://liangchiehchen.com/projects/released/deeplab_aspp_vgg16/prototxt_and_model.zip",),
    file_format="caffemodel-zip", member="train_iter_20000.caffemodel", tofu=True,
    converter="caffe", license=CAFFE_LICENSE, paper=V2_PAPER,
    num_params=37_877_652,
    notes=(CAFFE_NOTE,
           "The member name follows the ResNet-101 release's layout; if it differs, the error "
           "lists the zip's .caffemodel members.",
           "Metric values are from a reading of the paper not re-checked against its text."),
))
