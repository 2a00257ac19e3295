import json

import keras
import numpy as np
import pytest

from deeplab_keras import models
from tests import helpers
from tests.helpers import random_images
from tests.helpers import run_fit_step
from tests.helpers import run_model_saving_test

TINY_RESNET = helpers.TINY_RESNET
TINY_VGG = helpers.TINY_VGG
tiny_models = helpers.tiny_models


def as_json(config):
    return json.loads(json.dumps(config))


@pytest.mark.parametrize("family", sorted(tiny_models()))
def test_family_forward_fit_save(family, tmp_path):
    model = tiny_models()[family]()
    images = random_images(2, 33, 41)
    logits = model(images)
    assert logits.shape == (2, 33, 41, 3)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.isfinite(np.asarray(logits)).all()
    run_fit_step(model, images, 3)
    restored = run_model_saving_test(model, images, tmp_path)
    assert as_json(restored.get_config()) == as_json(model.get_config())


def test_any_input_size_in_one_model():
    model = tiny_models()["v3_resnet"]()
    for size in [(17, 17), (40, 23), (64, 96)]:
        assert model(random_images(1, *size)).shape == (1, *size, 3)


def test_output_stride_logits_option():
    model = models.DeepLabV3(backbone="resnet50_v1_5", output_stride=8, num_classes=4,
                             aspp_filters=8, upsample_logits=False, backbone_kwargs=TINY_RESNET)
    assert model(random_images(1, 65, 65)).shape == (1, 9, 9, 4)
    plus = models.DeepLabV3Plus(backbone="resnet50", output_stride=16, num_classes=4,
                                aspp_filters=8, decoder_filters=8, upsample_logits=False,
                                backbone_kwargs=TINY_RESNET)
    assert plus(random_images(1, 65, 65)).shape == (1, 17, 17, 4)


def test_msc_fuses_by_max_and_exposes_scales(tmp_path):
    base = tiny_models()["v3_resnet"]()
    msc = models.MSC(base, scales=(1.0, 0.75, 0.5), output_all_scales=True)
    images = random_images(2, 33, 41)
    out = msc(images, training=False)
    assert set(out) == {"fused", "scale_1", "scale_0.75", "scale_0.5"}
    stacked = np.stack([np.asarray(out[k]) for k in ("scale_1", "scale_0.75", "scale_0.5")])
    np.testing.assert_allclose(np.asarray(out["fused"]), stacked.max(0), atol=1e-6)
    np.testing.assert_allclose(np.asarray(out["scale_1"]),
                               np.asarray(base(images, training=False)), atol=1e-5)
    fused_only = models.MSC(base)
    assert fused_only(images).shape == (2, 33, 41, 3)
    run_model_saving_test(msc, images, tmp_path)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    labels = np.random.default_rng(0).integers(0, 3, (2, 33, 41))
    msc.compile(optimizer="sgd", loss={k: loss for k in out})  # the paper's 4 losses
    history = msc.fit(images, {k: labels for k in out}, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_full_size_parameter_counts_match_published():
    tv = models.DeepLabV3(backbone="resnet101_v1_5", output_stride=8, num_classes=21,
                          head="torchvision")
    # torchvision deeplabv3_resnet101(aux_loss=False): 58,630,997 parameters
    # (torch counts parameters, not BN running statistics = Keras trainable weights).
    assert sum(int(np.prod(w.shape)) for w in tv.trainable_weights) == 58_630_997
    v1 = models.DeepLabV1(num_classes=21)
    assert 20.4e6 < v1.count_params() < 20.6e6  # "about 20.5M" (DeepLab v2 paper)


def test_clear_errors():
    with pytest.raises(ValueError, match="backbone"):
        models.DeepLabV2(backbone="xception65")
    with pytest.raises(ValueError, match="aspp"):
        models.DeepLabV2(aspp="M")
    with pytest.raises(ValueError, match="head"):
        models.DeepLabV3(head="fcn", backbone_kwargs=TINY_RESNET)
    with pytest.raises(ValueError, match="num_classes"):
        models.DeepLabV3(num_classes=0, backbone_kwargs=TINY_RESNET)
    with pytest.raises(ValueError, match="VGG-16 LargeFOV"):
        models.DeepLabV1(backbone="resnet101")
    with pytest.raises(ValueError, match="scales"):
        models.MSC(tiny_models()["v3_resnet"](), scales=(1.0, -1.0))
    with pytest.raises(ValueError, match="expected shape=.*3.*found shape=.*4"):
        tiny_models()["v3_resnet"]()(np.zeros((1, 16, 16, 4), "float32"))


def test_models_stay_nhwc_under_a_channels_first_global_setting():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        for family in ("v2_vgg_S", "v3_resnet"):
            model = tiny_models()[family]()
            assert model(random_images(1, 33, 33)).shape == (1, 33, 33, 3)
    finally:
        keras.config.set_image_data_format(previous)


def test_compiled_predict_matches_eager():
    model = tiny_models()["v3plus_resnet"]()
    images = random_images(2, 35, 29)
    eager = np.asarray(model(images, training=False))
    model.compile(jit_compile=True)  # XLA on TensorFlow; JAX always compiles
    np.testing.assert_allclose(model.predict(images, verbose=0), eager, atol=1e-4)


def test_model_dtype_reaches_backbone_and_head_and_round_trips():
    model = models.DeepLabV3Plus(backbone="mobilenetv2", num_classes=3, aspp_filters=8,
                                 decoder_filters=8, low_level_filters=4,
                                 backbone_kwargs=dict(alpha=0.35), dtype="mixed_bfloat16")
    policies = {layer.dtype_policy.name for layer in model.layers if layer.weights}
    policies |= {layer.dtype_policy.name for layer in model.backbone.layers if layer.weights}
    assert policies == {"mixed_bfloat16"}
    assert model.output.dtype == "float32"  # logits stay float32
    rebuilt = models.DeepLabV3Plus.from_config(model.get_config())
    assert rebuilt.get_config() == model.get_config()
