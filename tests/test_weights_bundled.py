"""The CamVid models shipped inside the package: offline loading, integrity, quality, card.

Every test runs for both bundled models: the GPU-trained main one and the CPU-trained one."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import assets
from deeplab_keras import files
from deeplab_keras import inference
from deeplab_keras.weights import cache
from deeplab_keras.weights import cards
from deeplab_keras.weights import errors
from deeplab_keras.weights import registry

pytestmark = pytest.mark.tf_free_host

GPU_MODEL = "deeplabv3plus_resnet50w40_camvid"
CPU_MODEL = "deeplabv3plus_mobilenetv2_camvid"
BUNDLED = (GPU_MODEL, CPU_MODEL)
# Pixel accuracy on the three bundled example frames (void ignored), and the mean gain of the
# tuned CRF there. Measured: GPU model 92.1-96.2% (random network ~10%); CPU model 81-82%,
# CRF +11.1, +7.0 and +1.4 points.
EXPECTED = {GPU_MODEL: dict(example_accuracy=0.90, crf_gain=0.002, max_size=40_000_000),
            CPU_MODEL: dict(example_accuracy=0.75, crf_gain=0.03, max_size=32_000_000)}
LABELS_DIR = os.path.join(os.path.dirname(__file__), "data", "camvid_example_labels")
CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")
VOID = 11


@pytest.fixture(scope="module", params=BUNDLED)
def name(request):
    return request.param


@pytest.fixture(scope="module")
def model(name):
    return dk.load_model(name)


def test_record_points_at_the_bundled_file(name):
    record = registry.get_record(name)
    path = assets.package_path(record.bundled)
    assert os.path.getsize(path) == record.size <= EXPECTED[name]["max_size"]
    assert files.sha256_file(path) == record.sha256
    assert record.urls == () and record.file_format == "bundled-h5"
    assert name in dk.list_models("*_camvid")


def test_loads_offline_without_touching_the_cache(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("DEEPLAB_KERAS_OFFLINE", "1")
    model = dk.load_model(name)
    record = registry.get_record(name)
    assert model.weight_record is record
    assert model.count_params() == record.num_params
    assert not (tmp_path / "keras_home").exists() or not any(
        (tmp_path / "keras_home").rglob("*.h5"))


def test_weights_are_stored_in_float16_and_loaded_as_float32(name, model):
    stored = cache.read_converted_weights(
        assets.package_path(registry.get_record(name).bundled))
    kinds = {path.rsplit("/", 1)[-1]: value.dtype for path, value in stored.items()}
    assert kinds["kernel"] == np.float16
    assert kinds["moving_variance"] == np.float32 and kinds["moving_mean"] == np.float32
    assert all(str(w.dtype) == "float32" for w in model.weights)


def _example_labels(stem):
    return np.asarray(Image.open(os.path.join(LABELS_DIR, stem + ".png")))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_segments_the_bundled_examples_like_their_ground_truth(name, model, index):
    path = assets.example_images()[index]
    stem = os.path.splitext(os.path.basename(path))[0]
    truth = _example_labels(stem)
    result = inference.segment(model, path)
    assert result.labels.shape == truth.shape == (360, 480)
    valid = truth != VOID
    accuracy = float(np.mean(result.labels[valid] == truth[valid]))
    assert accuracy > EXPECTED[name]["example_accuracy"], accuracy
    road = registry.get_record(name).class_names.index("Road")
    bottom = result.labels[-60:, 160:320]
    assert np.mean(bottom == road) > 0.5


def test_tuned_crf_improves_the_bundled_examples(name, model):
    import keras

    if keras.backend.backend() != "tensorflow":
        # Full-size CRF on three images; the JAX CRF's agreement with the TF one is checked
        # in tests/test_dense_crf.py, and crf=True on JAX just below.
        pytest.skip("quality check of the shipped CRF parameters: runs in the TensorFlow pass")
    gains = []
    for path in assets.example_images()[:3]:
        truth = _example_labels(os.path.splitext(os.path.basename(path))[0])
        valid = truth != VOID
        plain, refined = (inference.segment(model, path, crf=crf) for crf in (None, True))
        gains.append(np.mean(refined.labels[valid] == truth[valid])
                     - np.mean(plain.labels[valid] == truth[valid]))
    assert np.mean(gains) > EXPECTED[name]["crf_gain"], gains


def test_crf_true_takes_the_tuned_parameters(name, model):
    record = registry.get_record(name)
    crf = inference.resolve_crf(True, record)
    assert (crf.appearance_weight, crf.theta_alpha, crf.theta_beta, crf.smoothness_weight,
            crf.theta_gamma) == record.crf
    image = inference.load_rgb(assets.example_images()[0])[::4, ::4]
    plain = inference.segment(model, image)
    refined = inference.segment(model, image, crf=True)
    assert refined.labels.shape == plain.labels.shape
    assert 0 < np.mean(refined.labels != plain.labels) < 0.5


def test_corrupt_or_missing_bundled_file_is_refused(name, tmp_path, monkeypatch):
    record = registry.get_record(name)
    copy = tmp_path / "deeplab_keras"
    target = copy / record.bundled
    target.parent.mkdir(parents=True)
    shutil.copy(assets.package_path(record.bundled), target)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    monkeypatch.setattr(assets, "PACKAGE_DIR", str(copy))
    with pytest.raises(errors.WeightsIntegrityError, match="corrupt or were replaced.*Reinstall"):
        dk.load_model(name)
    target.unlink()
    with pytest.raises(FileNotFoundError, match="missing from this installation"):
        dk.load_model(name)


def test_record_metrics_come_from_the_evaluation_file(name):
    record = registry.get_record(name)
    result = cards.load_evaluation(record)
    assert result["weights_sha256"] == record.sha256
    by_setting = {r["setting"]: r for r in result["results"]}
    assert len(record.metrics) == len(by_setting)
    for metric in record.metrics:
        assert metric.setting in by_setting
        assert metric.value == pytest.approx(100 * by_setting[metric.setting]["miou"], abs=0.005)
    assert tuple(result["crf_search"]["best"]) == record.crf
    check = result["float16_check"]
    assert abs(check["float32_miou"] - check["float16_miou"]) < 0.002
    if check.get("label_agreement") is not None:  # None: measured on the device, mIoU only
        assert check["label_agreement"] > 0.999
    card = cards.model_card(record)
    for class_name in record.class_names:
        assert f"| {class_name} |" in card
    assert "multi-scale + flip + CRF" in card and "Total training wall time" in card


@pytest.mark.real_data
def test_val_miou_matches_the_model_card(name, model):
    """Scores all of CamVid val with the shipped weights; the card's number must come back."""
    if not os.path.isdir(CAMVID):
        pytest.skip(f"CamVid is not at {os.path.abspath(CAMVID)}")
    from deeplab_keras import data
    from deeplab_keras import evaluation

    layout = data.get_layout("camvid")
    examples = data.list_examples(layout, CAMVID, "val")
    result = evaluation.evaluate(model, data.iterate_eval(examples, layout), num_classes=11,
                                 ignore_label=layout.ignore_label, progress=False)
    recorded = cards.load_evaluation(registry.get_record(name))["results"][0]
    assert recorded["setting"] == "single scale" and result["num_images"] == 101
    assert result["miou"] == pytest.approx(recorded["miou"], abs=1e-3)
