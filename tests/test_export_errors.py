"""`dk.export` and `deeplab-keras export`: every refused request fails early with a message that
names the value and the fix; a failed export leaves nothing behind. (The formats themselves are
checked in tests/test_export_formats.py, marker `export`.)"""

import importlib.util
import os

import keras
import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras.deploy import options
from deeplab_keras.deploy.options import ExportError

on_tensorflow = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                   reason="exporting runs on the TensorFlow backend")


def tiny_model():
    return dk.models.DeepLabV3(backbone="mobilenetv2", output_stride=16, num_classes=3,
                               aspp_filters=8, aspp_rates=(), backbone_kwargs=dict(alpha=0.1))


@pytest.mark.parametrize("alias, name", [("saved_model", "tf_saved_model"),
                                         ("TFLite", "litert"), ("onnx", "onnx")])
def test_format_aliases(alias, name):
    assert options.canonical_format(alias) == name


@pytest.mark.parametrize("kwargs, match", [
    (dict(format="torchscript"), r"unknown format 'torchscript'.*tf_saved_model"),
    (dict(format="onnx", quantize="int8"), r"quantize='int8' applies to the litert format"),
    (dict(format="litert", input_size=(8, 8), quantize="int4"), r"quantize must be one of"),
    (dict(format="litert", input_size=(8, 8), quantize="int8"), r"needs calibration_data"),
    (dict(format="litert", input_size=(8, 8), calibration_data="imgs"),
     r"calibration_data is only used by quantize='int8'"),
    (dict(format="litert", input_size=(8, 8), crf=True), r"tf_saved_model only"),
    (dict(format="onnx", crf="deeplab_resnet101_voc"), r"tf_saved_model only"),
    (dict(format="litert"), r"fixed input size; give input_size"),
    (dict(format="onnx", input_size=(8, 0)), r"input_size must be \(height, width\)"),
    (dict(format="onnx", input_size=(8.5, 8)), r"input_size must be"),
])
def test_refused_requests(tmp_path, kwargs, match):
    ext = options.EXTENSIONS[options.canonical_format(kwargs["format"])] if kwargs[
        "format"] != "torchscript" else ".pt"
    with pytest.raises(ExportError, match=match):
        dk.export(None, str(tmp_path / f"model{ext}"), **kwargs)
    assert os.listdir(tmp_path) == []


def test_refused_paths(tmp_path):
    with pytest.raises(ExportError, match=r"ending in '\.tflite'.*model\.tflite"):
        dk.export(None, str(tmp_path / "model.tfl"), format="tflite", input_size=(8, 8))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="SavedModel is a folder"):
        dk.export(None, str(tmp_path / "file"), format="saved_model")
    (tmp_path / "folder.onnx").mkdir()
    with pytest.raises(ExportError, match="is a folder; give a file name"):
        dk.export(None, str(tmp_path / "folder.onnx"), format="onnx")
    with pytest.raises(ExportError, match="not a writable folder"):
        dk.export(None, str(tmp_path / "file" / "sub" / "m.onnx"), format="onnx")


@pytest.mark.tf_free_host
def test_needs_tensorflow(tmp_path, monkeypatch):
    """A TensorFlow-free host (real in .ci/run's no-TensorFlow pass; simulated elsewhere)."""
    if importlib.util.find_spec("tensorflow") is not None:
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "tensorflow" else real(name, *a))
    with pytest.raises(ExportError, match="needs TensorFlow.*pip install tensorflow"):
        dk.export(tiny_model(), str(tmp_path / "m.onnx"), format="onnx")
    assert os.listdir(tmp_path) == []


@pytest.mark.requires_tf
def test_needs_tensorflow_backend(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ExportError, match="TensorFlow backend; Keras is using 'jax'"):
        dk.export(None, str(tmp_path / "m.onnx"), format="onnx")


@pytest.mark.requires_tf
def test_missing_onnx_converter_is_named(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    if keras.backend.backend() != "tensorflow":
        monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    with pytest.raises(ExportError, match=r"needs tf2onnx.*deeplab-keras\[export\]"):
        dk.export(None, str(tmp_path / "m.onnx"), format="onnx")


def test_calibration_folder_without_images(tmp_path):
    from deeplab_keras.deploy.calibration import calibration_images

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ExportError, match="holds no images"):
        calibration_images(str(tmp_path), (8, 8))
    with pytest.raises(ExportError, match="not a folder"):
        calibration_images(str(tmp_path / "missing"), (8, 8))
    with pytest.raises(ExportError, match=r"\[N, H, W, 3\]"):
        calibration_images(np.zeros((2, 8, 8)), (8, 8))
    batches = calibration_images(np.zeros((300, 5, 7, 3), np.uint8), (8, 9))
    assert len(batches) == 100 and batches[0].shape == (1, 8, 9, 3)
    assert batches[0].dtype == np.uint8


@pytest.mark.requires_tf
@on_tensorflow
@pytest.mark.parametrize("kwargs, match", [
    (dict(format="litert", input_size=(8, 8)), r"contains the dense CRF layer 'crf'.*litert "
                                                r"cannot express.*dk\.models\.unwrap\(model\)"),
    (dict(format="saved_model", crf=True), r"contains the dense CRF.*would refine twice"),
])
def test_model_with_a_dense_crf(tmp_path, kwargs, match):
    crf = dk.layers.DenseCRF(iterations=1, name="crf")
    refined = dk.models.MSC(dk.models.CRFRefined(tiny_model(), crf), scales=(1.0,))
    with pytest.raises(ExportError, match=match):
        dk.export(refined, str(tmp_path / "m.tflite"), **kwargs)
    assert os.listdir(tmp_path) == []


class ArgmaxOneHot(keras.layers.Layer):
    """`keras.ops.argmax` on TensorFlow adds a NaN check (BitwiseAnd) LiteRT lacks."""

    def call(self, x):
        return keras.ops.one_hot(keras.ops.argmax(x, axis=-1), 3) * 1.0


@pytest.mark.requires_tf
@on_tensorflow
def test_unsupported_op_is_named_and_nothing_is_left(tmp_path):
    images = keras.Input((None, None, 3))
    model = keras.Model(images, ArgmaxOneHot()(keras.layers.Conv2D(3, 1)(images)))
    target = tmp_path / "m.tflite"
    target.write_bytes(b"previous export")
    with pytest.raises(ExportError, match=r"LiteRT's builtin op set lacks: BitwiseAnd.*onnx"):
        dk.export(model, str(target), format="litert", input_size=(8, 8))
    assert sorted(os.listdir(tmp_path)) == ["m.tflite"]
    assert target.read_bytes() == b"previous export"


@pytest.mark.requires_tf
@on_tensorflow
def test_failed_saved_model_leaves_the_old_folder(tmp_path, monkeypatch):
    from deeplab_keras.deploy import saved_model

    target = tmp_path / "sm"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(b"old")

    def boom(*args, **kwargs):  # the last write into the new folder fails
        raise OSError("disk full")

    monkeypatch.setattr(saved_model.json, "dump", boom)
    with pytest.raises(OSError, match="disk full"):
        dk.export(tiny_model(), str(target), format="saved_model")
    assert sorted(os.listdir(tmp_path)) == ["sm"]
    assert sorted(os.listdir(target)) == ["saved_model.pb"]
    assert (target / "saved_model.pb").read_bytes() == b"old"


def run_cli(*args):
    from deeplab_keras import cli

    return cli.run(["deeplab-keras", "export", *args])


@pytest.mark.parametrize("args, match", [
    ((), "export needs --model"),
    (("--model", "m.keras", "--format", "litert"), "fixed input size; give input_size"),
    (("--model", "m.keras", "--format", "onnx", "--quantize", "float16"),
     "applies to the litert format only"),
    (("--model", "m.keras", "--format", "litert", "--input_size", "8,8", "--quantize", "int8"),
     "needs calibration_data"),
    (("--model", "m.keras", "--crf", "1,2"), "--crf as numbers must be five"),
    (("--model", "m.keras", "--with_crf", "--crf", "voc"), "--with_crf means --crf model"),
    (("--model", "m.keras", "--format", "pt"), "--format"),
    (("--model", "m.keras", "--calibration_data", "nowhere"), "is not a folder of images"),
])
def test_cli_refuses_before_loading(args, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(*args) == 2
    assert match in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.requires_tf
@on_tensorflow
def test_cli_refuses_random_weights(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("--model", "deeplabv3plus_mobilenetv2", "--format", "onnx") == 2
    assert "export needs trained weights" in capsys.readouterr().err
