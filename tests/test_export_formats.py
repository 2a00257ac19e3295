"""Exports against the Keras model they came from, run in their own runtimes.

The bundled MobileNetV2 CamVid model goes to every format (LiteRT in all four precisions) and
runs in a subprocess that never imports deeplab_keras (nor TensorFlow for LiteRT and ONNX), the
way a deployment calls it; a tiny model of each family goes to each format; the main bundled
model (ResNet-50 w40) goes through the README's own SavedModel and LiteRT float16 commands.
Tolerances on the bundled example images (360x480): max |probability difference| <= 1e-4 for
the float32 exports (SavedModel, LiteRT float32, ONNX; measured 1e-6..3e-6 on the MobileNetV2
model, up to 6.7e-6 on the main one); label agreement >= 99% for LiteRT float16 and >= 95% for
dynamic-range and full int8 (measured: BENCHMARKS.md "Export").

Needs `pip install -e ".[export]"`; run with `python -m pytest -m export`.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras.deploy.runtimes import compare
from deeplab_keras.deploy.runtimes import keras_probabilities
from deeplab_keras.deploy.runtimes import load_exported
from deeplab_keras.deploy.saved_model import CRF_EXTRA_OPS
from tests.helpers import tiny_models

pytestmark = [
    pytest.mark.export,
    pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                       reason="exporting runs on the TensorFlow backend"),
]
SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "run_exported.py")
FLOAT_TOLERANCE = 1e-4
AGREEMENT = {"float16": 0.99, "dynamic_int8": 0.95, "int8": 0.95}


@pytest.fixture(scope="module")
def bundled():
    model = dk.load_model("deeplabv3plus_mobilenetv2_camvid")
    images = np.stack([dk.inference.load_rgb(p) for p in dk.assets.example_images()])
    return model, images, keras_probabilities(model, images)


def run_outside(tmp_path, images, *exports):
    """Runs the exports in a fresh interpreter without deeplab_keras; returns its outputs."""
    np.save(tmp_path / "images.npy", images)
    out = tmp_path / "out.npz"
    env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, SCRIPT, str(tmp_path / "images.npy"), str(out),
                             *map(str, exports)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(out))


def graph_ops(concrete_function):
    graph = concrete_function.graph.as_graph_def()
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def assert_any_size_float_export(out, model, images, reference):
    """Float32 outputs of export 0 match Keras on the examples and on a 200x300 crop."""
    assert np.abs(out["0_probabilities"] - reference).max() <= FLOAT_TOLERANCE
    np.testing.assert_array_equal(out["0_labels"], reference.argmax(-1))
    crop = keras_probabilities(model, images[:1, :200, :300])
    assert np.abs(out["0_crop_probabilities"] - crop).max() <= FLOAT_TOLERANCE
    assert tuple(out["0_json_class_names"]) == model.class_names


def test_saved_model_bundled_with_crf(bundled, tmp_path):
    import tensorflow as tf

    model, images, reference = bundled
    path = dk.export(model, tmp_path / "camvid", format="saved_model", crf=True)
    out = run_outside(tmp_path, images, path)
    assert_any_size_float_export(out, model, images, reference)
    assert tuple(out["0_class_names"]) == model.class_names
    np.testing.assert_array_equal(out["0_palette"], model.palette)
    refined = dk.segment(model, images[0], crf=True).probabilities
    assert np.abs(out["0_crf_probabilities"][0] - refined).max() <= 1e-3
    assert (out["0_crf_probabilities"][0].argmax(-1) == refined.argmax(-1)).mean() >= 0.999
    weights_bytes = sum(int(np.prod(v.shape)) * 4 for v in model.weights)
    variables = os.path.join(path, "variables")
    stored = sum(os.path.getsize(os.path.join(variables, n)) for n in os.listdir(variables))
    assert stored < 1.1 * weights_bytes  # each weight saved once
    loaded = tf.saved_model.load(str(path))
    extra = graph_ops(loaded.signatures["serve_crf"]) - graph_ops(
        loaded.signatures["serving_default"])
    assert extra <= CRF_EXTRA_OPS, sorted(extra - CRF_EXTRA_OPS)


@pytest.mark.parametrize("quantizations", [("none", "float16"), ("dynamic_int8", "int8")])
def test_litert_bundled(bundled, tmp_path, quantizations):
    model, images, reference = bundled
    # int8 calibrates on the first example and is scored on the other two (disjoint).
    paths = [dk.export(model, tmp_path / f"camvid_{q}.tflite", format="litert",
                       input_size=images.shape[1:3], quantize=q,
                       calibration_data=images[:1] if q == "int8" else None)
             for q in quantizations]
    out = run_outside(tmp_path, images, *paths)
    for key, quantize in enumerate(quantizations):
        probabilities, labels = out[f"{key}_probabilities"], out[f"{key}_labels"]
        assert tuple(out[f"{key}_json_class_names"]) == model.class_names
        scored = slice(1, None) if quantize == "int8" else slice(None)
        agreement = (labels[scored] == reference[scored].argmax(-1)).mean()
        print(f"litert {quantize}: label agreement {agreement:.4%}, max |prob diff| "
              f"{np.abs(probabilities - reference).max():.2e}")
        if quantize == "none":
            assert np.abs(probabilities - reference).max() <= FLOAT_TOLERANCE
            np.testing.assert_array_equal(labels, reference.argmax(-1))
        else:
            assert agreement >= AGREEMENT[quantize], (quantize, agreement)
    if quantizations[0] == "none":  # float16 stores half the bytes
        assert os.path.getsize(paths[1]) < 0.6 * os.path.getsize(paths[0])


def test_onnx_bundled(bundled, tmp_path):
    model, images, reference = bundled
    path = dk.export(model, tmp_path / "camvid.onnx", format="onnx")
    out = run_outside(tmp_path, images, path)
    assert_any_size_float_export(out, model, images, reference)


@pytest.mark.parametrize("format", ["tf_saved_model", "litert", "onnx"])
@pytest.mark.parametrize("family", sorted(tiny_models()))
def test_tiny_family(family, format, tmp_path):
    model = tiny_models()[family]()
    images = np.random.default_rng(0).integers(0, 256, (1, 37, 45, 3)).astype(np.uint8)
    ext = {"tf_saved_model": "", "litert": ".tflite", "onnx": ".onnx"}[format]
    path = dk.export(model, tmp_path / f"{family}{ext}", format=format,
                     input_size=(37, 45) if format == "litert" else None)
    reference = keras_probabilities(model, images)
    labels, probabilities = load_exported(path)(images)
    assert np.abs(probabilities - reference).max() <= FLOAT_TOLERANCE
    top2 = np.sort(reference, -1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 1e-4  # random tiny models tie on some pixels
    np.testing.assert_array_equal(labels[clear], reference.argmax(-1)[clear])
    if format != "litert":  # any image size
        other = np.random.default_rng(1).integers(0, 256, (2, 29, 52, 3)).astype(np.uint8)
        agreement = compare(model, path, other)
        assert agreement.max_probability_diff <= FLOAT_TOLERANCE


def test_cli_export_end_to_end(tmp_path):
    """`deeplab-keras export` on a saved 4-class model: written, checked, and how to call it."""
    model_path = os.path.join(os.path.dirname(__file__), "data", "four_class_tf.keras")
    result = subprocess.run(
        [sys.executable, "-m", "deeplab_keras.cli", "export", "--model", model_path, "--format",
         "tflite", "--input_size", "96,128"], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == ["four_class_tf.json", "four_class_tf.tflite"]
    assert "Checked against the Keras model: 100.00% of pixels labelled alike" in result.stdout
    assert "get_signature_runner" in result.stdout


def test_readme_commands_on_the_main_bundled_model(tmp_path):
    """README "Deploy" on the main bundled model: the SavedModel (with the CRF signature) and
    LiteRT float16 commands, then both files called as the README calls them."""
    name = "deeplabv3plus_resnet50w40_camvid"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    commands = [["--format", "saved_model", "--crf", "model"],
                ["--format", "tflite", "--input_size", "360,480", "--quantize", "float16"]]
    checked = []
    for flags in commands:
        result = subprocess.run(
            [sys.executable, "-m", "deeplab_keras.cli", "export", "--model", name, *flags],
            cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        line = [x for x in result.stdout.splitlines() if "Checked against the Keras model" in x]
        assert line, result.stdout[-3000:]
        checked.append(float(line[0].split(": ")[1].split("%")[0]))
    assert checked[0] == 100.0 and checked[1] >= 100 * AGREEMENT["float16"], checked
    saved_model, tflite = tmp_path / f"{name}_saved_model", tmp_path / f"{name}_float16.tflite"
    assert saved_model.is_dir() and tflite.is_file(), sorted(os.listdir(tmp_path))
    model = dk.load_model(name)
    images = np.stack([dk.inference.load_rgb(p) for p in dk.assets.example_images()])
    reference = keras_probabilities(model, images)
    out = run_outside(tmp_path, images, saved_model, tflite)
    assert np.abs(out["0_probabilities"] - reference).max() <= FLOAT_TOLERANCE
    np.testing.assert_array_equal(out["0_labels"], reference.argmax(-1))
    assert tuple(out["0_class_names"]) == model.class_names
    agreement = (out["1_labels"] == reference.argmax(-1)).mean()
    print(f"{name} litert float16: label agreement {agreement:.4%}")
    assert agreement >= AGREEMENT["float16"]
