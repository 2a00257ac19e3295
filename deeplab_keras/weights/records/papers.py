"""The papers the weight records cite."""

V1_PAPER = ("Chen, Papandreou, Kokkinos, Murphy, Yuille. Semantic Image Segmentation with Deep "
            "Convolutional Nets and Fully Connected CRFs. ICLR 2015. arXiv:1412.7062")
V2_PAPER = ("Chen, Papandreou, Kokkinos, Murphy, Yuille. DeepLab: Semantic Image Segmentation "
            "with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs. "
            "TPAMI 2018. arXiv:1606.00915")
V3_PAPER = ("Chen, Papandreou, Schroff, Adam. Rethinking Atrous Convolution for Semantic Image "
            "Segmentation. arXiv:1706.05587")
V3PLUS_PAPER = ("Chen, Zhu, Papandreou, Schroff, Adam. Encoder-Decoder with Atrous Separable "
                "Convolution for Semantic Image Segmentation. ECCV 2018. arXiv:1802.02611")
MOBILENETV2_PAPER = "Sandler et al., MobileNetV2, CVPR 2018, arXiv:1801.04381"
