"""Every model and backbone constructor refuses unknown keyword arguments (issue 14: a typo such
as `output_strid=8` used to be dropped without a word), and `backbone_weights` works wherever a
model is built."""

import dataclasses
import inspect

import keras
import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras.backbones.base import ConfiguredModel

pytestmark = pytest.mark.tf_free_host

TINY_MOBILENET = dict(backbone="mobilenetv2", num_classes=3, backbone_kwargs=dict(alpha=0.35),
                      aspp_filters=8)


def _public_constructors():
    """Every class in dk.models and dk.backbones built on ConfiguredModel (bases excluded),
    and every backbone factory function."""
    found = {}
    for module in (dk.models, dk.backbones):
        for name in dir(module):
            value = getattr(module, name)
            if inspect.isclass(value) and issubclass(value, ConfiguredModel):
                found[value.__name__] = value
    for name in dk.backbones.list_backbones():
        found[name] = getattr(dk.backbones, name)
    for base in ("DeepLabModel", "Backbone", "WrapperModel", "ConfiguredModel"):
        found.pop(base, None)
    return found


CONSTRUCTORS = _public_constructors()


def test_the_list_covers_every_family_and_both_wrappers():
    assert {"DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus", "MSC", "CRFRefined",
            "ResNetBackbone", "XceptionBackbone", "MobileNetV2Backbone",
            "VGG16LargeFOVBackbone", "resnet101", "mobilenetv2"} <= set(CONSTRUCTORS)


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_unknown_keyword_is_a_type_error_naming_it_and_the_accepted_ones(name):
    with pytest.raises(TypeError, match=r"'output_strid'.*accepts \[") as info:
        CONSTRUCTORS[name](output_strid=8)
    assert "name" in str(info.value)  # the accepted list is there


def test_typos_inside_backbone_kwargs_and_build_are_refused():
    with pytest.raises(TypeError, match=r"MobileNetV2Backbone.*'alpah'.*'alpha'"):
        dk.models.DeepLabV3Plus(backbone="mobilenetv2", num_classes=3,
                                backbone_kwargs={"alpah": 0.35})
    with pytest.raises(TypeError, match="'output_strid'"):
        dk.models.build("deeplabv3plus_mobilenetv2", 3, output_strid=8)
    with pytest.raises(TypeError, match="'scale'"):
        dk.models.MSC(dk.models.DeepLabV3(**TINY_MOBILENET), scale=(0.5,))
    with pytest.raises(TypeError, match="'iteration'"):
        dk.models.CRFRefined(dk.models.DeepLabV3(**TINY_MOBILENET), iteration=3)


def test_accepted_arguments_still_round_trip_through_the_config():
    model = dk.models.DeepLabV3(**TINY_MOBILENET, class_names=["a", "b", "c"])
    again = type(model).from_config(model.get_config())
    assert again.class_names == ("a", "b", "c") and again.count_params() == model.count_params()


@pytest.fixture
def imagenet_mobilenet_mirror(tmp_path, monkeypatch):
    """keras.applications MobileNetV2 no-top weights written by keras itself, served from a
    local file:// URL in place of the real download."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from deeplab_keras.weights import records

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    for name in ("DEEPLAB_KERAS_CACHE", "DEEPLAB_KERAS_OFFLINE", "DEEPLAB_KERAS_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    app = keras.applications.MobileNetV2(weights=None, include_top=False,
                                         input_shape=(None, None, 3))
    rng = np.random.default_rng(0)
    for v in app.weights:
        v.assign((rng.normal(size=v.shape) * 0.1 + 1.0).astype(v.dtype))
    spec = records.BACKBONE_WEIGHTS["mobilenetv2"]
    h5 = tmp_path / spec.filename
    with h5py.File(h5, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, app)
    monkeypatch.setitem(records.BACKBONE_WEIGHTS, "mobilenetv2",
                        dataclasses.replace(spec, url="file://" + str(h5)))
    return app


def test_backbone_weights_work_in_every_model_constructor_and_build(imagenet_mobilenet_mirror):
    """Used to be honoured only by the loader; the model classes dropped it."""
    expected = imagenet_mobilenet_mirror.get_layer("Conv1").kernel.numpy()
    built = [
        dk.models.DeepLabV3(backbone="mobilenetv2", num_classes=3, aspp_filters=8,
                            backbone_weights="imagenet"),
        dk.models.DeepLabV3Plus(backbone="mobilenetv2", num_classes=3, aspp_filters=8,
                                decoder_filters=8, low_level_filters=4,
                                backbone_weights="imagenet"),
        dk.models.build("deeplabv3_mobilenetv2", 3, aspp_filters=8, backbone_weights="imagenet"),
    ]
    for model in built:
        np.testing.assert_array_equal(model.backbone.get_layer("Conv").kernel.numpy(), expected)
        assert "backbone_weights" not in model.get_config()  # a reload downloads nothing
    with pytest.raises(ValueError, match="backbone_weights must be None or one of"):
        dk.models.DeepLabV3(**TINY_MOBILENET, backbone_weights="imagenet21k")
