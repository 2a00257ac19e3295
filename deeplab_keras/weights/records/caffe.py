"""DeepLab v1 and v2 from the authors' Caffe releases.

Caffe computes pooled sizes rounding up and resizes with its `Interp` layer (align-corners
bilinear, `(n - 1) // shrink * zoom + 1` sizes), so these records build the backbone with
Caffe pooling and the MSC branches with Caffe's size rule: every layer then has the size Caffe
gives it at any input size (tests/test_official_prototxt.py checks it at 321, 500 and 513).
"""

from deeplab_keras.crf.params import PRESETS
from deeplab_keras.data.classes import VOC_CLASSES
from deeplab_keras.layers.preprocessing import CAFFE_DEEPLAB_BGR_MEAN
from deeplab_keras.layers.preprocessing import NO_STD
from deeplab_keras.weights.records.papers import V1_PAPER
from deeplab_keras.weights.records.papers import V2_PAPER
from deeplab_keras.weights.specs import Metric
from deeplab_keras.weights.specs import Preprocessing
from deeplab_keras.weights.specs import WeightRecord

RECORDS = []

# Input: BGR, minus the mean, 0..255 (the prototxts' `mean_value`).
CAFFE_PRE = Preprocessing(
    mean=CAFFE_DEEPLAB_BGR_MEAN, std=NO_STD, channel_order="bgr", input_size=(513, 513),
    resize="pad-crop",
    source="DeepLab v1/v2 test prototxts: mean_value 104.008/116.669/122.675 (BGR), "
           "crop_size 513")
CAFFE_KWARGS = dict(output_stride=8, mean=CAFFE_DEEPLAB_BGR_MEAN, std=NO_STD,
                    channel_order="bgr", align_corners=True)
CAFFE_LICENSE = ("not stated by the release; research code and weights from the DeepLab "
                 "authors (check with them before commercial use)")
CAFFE_NOTE = ("No hash is published: the sha256 of the download is recorded once it has "
              "converted (trust on first use) and verified on every later use.")
PROTOTXT = "../shared/reference/official-prototxt/{} (tests/test_official_prototxt.py)"
KAZUTO_SETUP = "kazuto1011/deeplab-pytorch scripts/setup_caffemodels.sh"
KAZUTO_README = ("DeepLab v2 paper (arXiv:1606.00915); 'Official' row of the "
                 "kazuto1011/deeplab-pytorch README")

RECORDS.append(WeightRecord(
    name="deeplab_resnet101_voc",
    summary="DeepLab v2 ResNet-101 ASPP-L + MSC, COCO-pretrained, VOC 2012 train_aug",
    architecture="DeepLabV2",
    arch_kwargs=dict(backbone="resnet101", aspp="L",
                     backbone_kwargs=dict(pool_padding="caffe"), **CAFFE_KWARGS),
    msc_scales=(1.0, 0.75, 0.5), msc_kwargs=dict(align_corners=True, size_rule="caffe_interp"),
    num_classes=21, class_names=VOC_CLASSES, palette="voc", preprocessing=CAFFE_PRE,
    crf=PRESETS["deeplab_resnet101_voc"],
    crf_source="kazuto1011/deeplab-pytorch configs/voc12.yaml (released DeepLab v2 values); "
               "DenseCRF.from_preset('deeplab_resnet101_voc')",
    metrics=(
        Metric("mIoU", 76.35, "PASCAL VOC 2012 val", "MSC (1, 0.75, 0.5), no CRF",
               KAZUTO_README),
        Metric("mIoU", 77.69, "PASCAL VOC 2012 val", "MSC + dense CRF", KAZUTO_README),
    ),
    urls=("http://liangchiehchen.com/projects/released/deeplab_aspp_resnet101/"
          "prototxt_and_model.zip",),
    file_format="caffemodel-zip", member="train_iter_20000.caffemodel", tofu=True,
    converter="caffe", license=CAFFE_LICENSE, paper=V2_PAPER,
    num_params=44_153_876,
    notes=(CAFFE_NOTE,
           "`train_iter_20000.caffemodel` is the train_aug model (the val scores); the zip also "
           "holds `train2_iter_20000.caffemodel` (trainval) and `init.caffemodel` (COCO).",
           "Batch norm is frozen in the release; the converted model keeps the statistics.",
           "The MSC branches (x0.75, x0.5) share the full-scale weights, as the train net's "
           "named params do; they are fused by a maximum at input resolution (Caffe fuses "
           "the score maps at stride 8, then upsamples)."),
    verified=(f"URL and members train_iter_20000/train2_iter_20000/init.caffemodel: "
              f"{KAZUTO_SETUP}",
              "layer names, blob shapes, strides, paddings, dilations and pooling rounding: "
              + PROTOTXT.format("deeplabv2_resnet101_train.prototxt and _test.prototxt"),
              "train_iter = train_aug, train2_iter = trainval_aug: the release's "
              "solver.prototxt and solver2.prototxt (../shared/reference/official-prototxt/)",
              f"metrics: {KAZUTO_README}"),
    unverified=("the zip's byte size and sha256 (none published)",),
))

RECORDS.append(WeightRecord(
    name="deeplab_vgg16_largefov_voc",
    summary="DeepLab v1 VGG-16 LargeFOV (fc6 rate 12, pool5a), VOC 2012 trainval_aug "
            "(train2_iter_8000)",
    architecture="DeepLabV1",
    arch_kwargs=dict(backbone_kwargs=dict(pooling="caffe", pool5a=True), **CAFFE_KWARGS),
    num_classes=21, class_names=VOC_CLASSES, palette="voc", preprocessing=CAFFE_PRE,
    crf=PRESETS["deeplab_v1_largefov_voc"],
    crf_source="third-party copies of the v1 LargeFOV values (bi_w 4, bi_xy_std 121, "
               "bi_rgb_std 5, pos_w 3, pos_xy_std 3), e.g. the comment in the 'torchlake' "
               "DeepLab port; no page of the authors found. "
               "DenseCRF.from_preset('deeplab_v1_largefov_voc')",
    metrics=(
        Metric("mIoU", 70.3, "PASCAL VOC 2012 test", "DeepLab-CRF-LargeFOV (with CRF)",
               "DeepLab v1 paper (arXiv:1412.7062), Table 3"),
    ),
    urls=("http://www.cs.jhu.edu/~alanlab/ccvl/DeepLab-LargeFOV/train2_iter_8000.caffemodel",
          "http://ccvl.stat.ucla.edu/ccvl/DeepLab-LargeFOV/train2_iter_8000.caffemodel"),
    file_format="caffemodel", tofu=True, converter="caffe", license=CAFFE_LICENSE,
    paper=V1_PAPER, num_params=20_505_429,
    notes=(CAFFE_NOTE,
           "Trained on VOC 2012 trainval_aug (`train2` = the second, trainval stage), so only "
           "test-set figures apply; evaluating it on VOC val scores images it was trained on.",
           "A bare V1-format caffemodel (the old `layers` field); its network has `pool5a`, a "
           "3x3 stride-1 average pooling (padding counted, as Caffe does) before fc6.",
           "Replaces an earlier entry that pointed at a DeepLab v2 LargeFOV zip of which no "
           "public trace exists."),
    verified=("URL: mitmul/deeplab-public-ver2 deeplab/download.sh (BASE_URL "
              "http://www.cs.jhu.edu/~alanlab/ccvl/DeepLab-LargeFOV/); second URL: "
              "get_DeepLab_LargeFOV_voc12_data.sh (sutanu70/Segmentation)",
              "train2 = trainval_aug, 8000 iterations: mitmul/deeplab-public-ver2 "
              "run_pascal.sh and deeplab_largeFOV/solver2.prototxt",
              "layer names, blob shapes, pool5a, fc6 hole 12: "
              + PROTOTXT.format("deeplabv1_largefov_test.prototxt"),
              "metric: DeepLab v1 paper (arXiv:1412.7062) Table 3, public copy of its text"),
    unverified=("the file's byte size and sha256 (none published)",
                "the CRF parameters: only third-party copies were found"),
))

RECORDS.append(WeightRecord(
    name="deeplab_vgg16_aspp_voc",
    summary="DeepLab v2 VGG-16 ASPP-L (rates 6/12/18/24, summed), VOC 2012 train_aug",
    architecture="DeepLabV2",
    arch_kwargs=dict(backbone="vgg16", aspp="L", backbone_kwargs=dict(pooling="caffe"),
                     **CAFFE_KWARGS),
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
    verified=("URL: public scripts that download and unzip it (e.g. `wget .../deeplab_aspp_vgg16/"
              "prototxt_and_model.zip; unzip prototxt_and_model.zip`)",
              "layer names, blob shapes, dilations and pooling rounding: "
              + PROTOTXT.format("deeplabv2_vgg16_aspp_test.prototxt")),
    unverified=("the member name train_iter_20000.caffemodel (public scripts show the zip "
                "holds train.prototxt and init.caffemodel; no listing of its snapshots)",
                "the metrics (paper table not re-checked)",
                "the zip's byte size and sha256 (none published)"),
))
