import keras
import numpy as np
import pytest

from deeplab_keras import backbones
from deeplab_keras import convert
from deeplab_keras import models


def test_resnet101_parity_with_keras_applications():
    source = keras.applications.ResNet101(weights=None, include_top=False,
                                          input_shape=(None, None, 3))
    ours = backbones.resnet101(output_stride=32)
    report = convert.from_keras_applications(ours, source)
    assert len(report.mapped) == len(source.weights) == len(ours.weights)
    x = np.random.default_rng(0).normal(size=(1, 96, 128, 3)).astype("float32")
    expected = np.asarray(source(x, training=False))
    actual = np.asarray(ours(x, training=False)["high_level"])
    assert actual.shape == expected.shape == (1, 3, 4, 2048)
    assert np.abs(expected).max() > 0.1  # features are not trivially zero
    assert np.abs(actual - expected).max() < 1e-4


def test_vgg16_weights_into_deeplab_v1():
    source = keras.applications.VGG16(weights=None, include_top=True)
    model = models.DeepLabV1(num_classes=21)
    report = convert.from_keras_applications(model, source)
    assert len(report.mapped) == 26  # 13 convs x (kernel, bias)
    assert any("fc1" in name for name in report.skipped)
    np.testing.assert_array_equal(np.asarray(model.backbone.get_layer("block5_conv3").kernel),
                                  np.asarray(source.get_layer("block5_conv3").kernel))


def test_wrong_layout_is_a_clear_error():
    source = keras.applications.ResNet50(weights=None, include_top=False)
    v1_5 = backbones.resnet50_v1_5()
    with pytest.raises(convert.ConversionError, match="stride-in-1x1"):
        convert.from_keras_applications(v1_5, source)
