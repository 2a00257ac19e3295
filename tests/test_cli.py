"""`deeplab-keras train | evaluate | predict` end to end on a tiny CamVid-layout folder."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from deeplab_keras import assets
from deeplab_keras import cli

pytestmark = pytest.mark.tf_free_host


def _tiny_camvid(root, n_train=4, n_val=2, size=(24, 32)):
    rng = np.random.default_rng(0)
    h, w = size
    for split, n in (("train", n_train), ("val", n_val)):
        os.makedirs(root / split)
        os.makedirs(root / f"{split}annot")
        for i in range(n):
            labels = np.zeros((h, w), np.uint8)
            labels[: h // 2] = 0  # sky on top
            labels[h // 2:] = 3  # road below
            labels[h // 2:, w // 2:] = 8  # a car
            labels[0, :4] = 11  # void
            palette = np.array([[128, 128, 128]] * 12, np.uint8)
            palette[3], palette[8] = (128, 64, 128), (64, 0, 128)
            image = np.clip(palette[labels] + rng.normal(0, 8, (h, w, 3)), 0, 255)
            Image.fromarray(image.astype(np.uint8)).save(root / split / f"f{i}.png")
            Image.fromarray(labels).save(root / f"{split}annot" / f"f{i}.png")
    return str(root)


def _run(*args):
    return cli.run(["deeplab-keras", *args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("camvid")
    data_dir = _tiny_camvid(root)
    out = str(tmp_path_factory.mktemp("run"))
    code = _run("train", "--data_dir", data_dir, "--dataset", "camvid",
                "--model", "deeplabv3_mobilenetv2", "--crop_size", "24,32",
                "--scale_range", "0.75,1.25", "--batch_size", "2", "--steps", "4",
                "--checkpoint_every", "2", "--optimizer", "adamw", "--learning_rate", "1e-3",
                "--output_dir", out, "--class_weights", "median_frequency")
    assert code == 0
    return data_dir, out


def test_train_writes_model_checkpoints_logs_and_pictures(trained):
    _, out = trained
    assert os.path.isfile(os.path.join(out, "model.keras"))
    restored = keras.saving.load_model(os.path.join(out, "model.keras"), compile=False)
    assert restored.output_shape[-1] == 11
    assert any(name.startswith("ckpt") for name in os.listdir(os.path.join(out, "checkpoints")))
    history = os.path.join(out, "logs", "history.csv")
    assert os.path.isfile(history)
    from deeplab_keras.train import tensorboard

    columns = tensorboard.read_history_csv(history)
    assert len(columns["loss"]) == 2 and all(np.isfinite(columns["loss"]))  # 2 checkpoints
    assert "val_miou" in columns
    assert os.listdir(os.path.join(out, "predictions"))
    metrics = json.load(open(os.path.join(out, "metrics_val.json")))
    assert metrics["num_images"] == 2 and 0.0 <= metrics["miou"] <= 1.0
    run = json.load(open(os.path.join(out, "run.json")))
    assert run["command"].startswith("deeplab-keras train --data_dir")
    assert run["flags"]["steps"] == 4 and run["steps"] == 4 and run["train_minutes"] >= 0
    assert run["software"]["backend"] == keras.backend.backend() and "CPU cores" in run[
        "hardware"]
    if keras.backend.backend() == "tensorflow":
        scalars = tensorboard.read_scalars(os.path.join(out, "logs"))
        assert any(tag.endswith("val_miou") for tag in scalars), sorted(scalars)
        assert any("loss" in tag for tag in scalars), sorted(scalars)


def test_evaluate_and_predict(trained, tmp_path, capsys):
    data_dir, out = trained
    model = os.path.join(out, "model.keras")
    assert _run("evaluate", "--model", model, "--data_dir", data_dir, "--dataset", "camvid",
                "--output_dir", str(tmp_path), "--scales", "0.75,1.0", "--flip") == 0
    printed = capsys.readouterr().out
    assert "Road" in printed or "road" in printed
    metrics = json.load(open(tmp_path / "metrics_val.json"))
    assert metrics["num_images"] == 2 and metrics["scales"] == [0.75, 1.0]
    pred_dir = tmp_path / "pred"
    assert _run("predict", "--model", model, "--images", os.path.join(data_dir, "val", "*.png"),
                "--output_dir", str(pred_dir)) == 0
    assert sorted(os.listdir(pred_dir)) == sorted(
        f"f{i}_{kind}.png" for i in range(2) for kind in ("mask", "overlay", "panel"))


def test_predict_with_the_bundled_model_and_its_crf(tmp_path, capsys):

    small = tmp_path / "street.png"  # a half-size example keeps the CRF quick
    Image.open(assets.example_images()[0]).resize((240, 180)).save(small)
    out = tmp_path / "out"
    assert _run("predict", "--model", "deeplabv3plus_mobilenetv2_camvid", "--images",
                str(small), "--output_dir", str(out), "--crf", "model") == 0
    assert "RANDOM" not in capsys.readouterr().out
    assert sorted(os.listdir(out)) == [f"street_{k}.png" for k in ("mask", "overlay", "panel")]
    assert np.asarray(Image.open(out / "street_mask.png")).shape == (180, 240, 3)


def test_cli_errors(tmp_path, capsys):
    assert _run() == 2
    assert _run("fly") == 2
    assert _run("train", "--data_dir", str(tmp_path / "missing")) == 2
    assert "not a folder" in capsys.readouterr().err
    assert _run("train", "--data_dir", str(tmp_path), "--crop_size", "12") == 2
    assert _run("train", "--data_dir", str(tmp_path)) == 1  # no CamVid images there
    assert "tmp" in capsys.readouterr().err
    assert _run("predict", "--images", str(tmp_path / "*.nothing")) == 2
    assert _run("train", "--no_such_flag") == 2
