"""Parity with torchvision's DeepLabV3-ResNet101 (marker `parity`).

Run: `python -m pytest -m parity` (needs `pip install torch==2.14.1 torchvision==0.29.1`).
The mapping-error checks at the bottom need no torch and run by default.
"""

import numpy as np
import pytest

from deeplab_keras import convert
from deeplab_keras import models

TV_MEAN = np.array([0.485, 0.456, 0.406], "float32")
TV_STD = np.array([0.229, 0.224, 0.225], "float32")


def _calibrated_torchvision_model(torch, torchvision):
    """Random weights, with BN statistics from random batches so activations stay O(1)."""
    torch.manual_seed(0)
    tv = torchvision.models.segmentation.deeplabv3_resnet101(
        weights=None, weights_backbone=None, aux_loss=False)
    for module in tv.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    tv.train()
    with torch.no_grad():
        for _ in range(2):
            tv(torch.randn(2, 3, 65, 65))
        # Residual sums grow through 33 units; a small classifier keeps logits O(1) so the
        # 1e-3 tolerance tests the mapping rather than float32 rounding of huge values.
        tv.classifier[4].weight.mul_(0.01)
    return tv.eval()


@pytest.mark.parity
def test_deeplabv3_resnet101_matches_torchvision():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    tv = _calibrated_torchvision_model(torch, torchvision)
    state_dict = {k: v.detach().numpy() for k, v in tv.state_dict().items()}
    model = models.DeepLabV3(backbone="resnet101_v1_5", output_stride=8, num_classes=21,
                             head="torchvision")
    report = convert.from_torchvision(model, state_dict)
    assert len(report.mapped) + len(report.skipped) == len(state_dict)
    assert all(k.endswith("num_batches_tracked") for k in report.skipped)
    x = np.random.default_rng(0).uniform(0, 255, (1, 97, 129, 3)).astype("float32")
    ours = np.asarray(model(x, training=False))
    x_t = torch.from_numpy(((x / 255.0 - TV_MEAN) / TV_STD).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        ref = tv(x_t)["out"].numpy().transpose(0, 2, 3, 1)
    assert ref.shape == ours.shape == (1, 97, 129, 21)
    assert np.abs(ref).max() > 0.1
    assert np.abs(ours - ref).max() < 1e-3


@pytest.mark.parity
def test_aux_head_tensors_are_listed_and_skipped():
    pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    tv = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, aux_loss=True)
    state_dict = {k: v.detach().numpy() for k, v in tv.state_dict().items()}
    model = models.DeepLabV3(backbone="resnet50_v1_5", output_stride=8, num_classes=21,
                             head="torchvision")
    report = convert.from_torchvision(model, state_dict)
    assert any(k.startswith("aux_classifier.") for k in report.skipped)
    assert len(report.mapped) == len(model.weights)


def test_wrong_target_architecture_is_a_clear_error():
    tiny = dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4), stem_filters=4)
    caffe = models.DeepLabV3(backbone="resnet50", num_classes=3, aspp_filters=8,
                             backbone_kwargs=tiny)
    with pytest.raises(convert.ConversionError, match="resnet101_v1_5"):
        convert.from_torchvision(caffe, {})
    deeplab_head = models.DeepLabV3(backbone="resnet50_v1_5", num_classes=3, aspp_filters=8,
                                    backbone_kwargs=tiny)
    with pytest.raises(convert.ConversionError, match="head='torchvision'"):
        convert.from_torchvision(deeplab_head, {})
    tv_head = models.DeepLabV3(backbone="resnet50_v1_5", num_classes=3, aspp_filters=8,
                               head="torchvision", backbone_kwargs=tiny)
    with pytest.raises(convert.ConversionError, match="Shape mismatch"):
        convert.from_torchvision(tv_head, {"backbone.conv1.weight": np.zeros((64, 3, 7, 7))})
    with pytest.raises(convert.ConversionError, match="no counterpart"):
        convert.from_torchvision(tv_head, {"backbone.fc.weight": np.zeros((10, 10))})
    with pytest.raises(convert.ConversionError, match="got no value"):
        convert.from_torchvision(tv_head, {})
