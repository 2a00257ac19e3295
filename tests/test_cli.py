"""`deeplab-keras train | evaluate | predict` end to end on a tiny CamVid-layout folder."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from deeplab_keras import assets
from deeplab_keras import cli
from deeplab_keras.data import classes
from tests import helpers

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
    assert columns["step"] == [2, 4]
    if keras.backend.backend() == "tensorflow":
        scalars = tensorboard.read_scalars(os.path.join(out, "logs"))
        # Training and validation share the x axis: optimizer steps, not checkpoint indices.
        assert [s for s, _ in scalars["train/loss"]] == [2, 4], sorted(scalars)
        assert [s for s, _ in scalars["train/learning_rate"]] == [2, 4]
        assert [s for s, _ in scalars["validation/val_miou"]] == [2, 4]
        # Per-class IoU scalars carry the class names, not indices.
        iou_tags = {t.split("/", 2)[2] for t in scalars if t.startswith("validation/val_iou/")}
        from deeplab_keras import data

        assert iou_tags and iou_tags <= set(data.get_layout("camvid").class_names), iou_tags


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
                "--output_dir", str(pred_dir), "--mixed_precision", "mixed_bfloat16") == 0
    assert "Running under the mixed_bfloat16 dtype policy" in capsys.readouterr().out
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


def _four_class_folder(root, n_val=2):
    return helpers.four_class_folder(root, n_train=3, n_val=n_val, size=(20, 24))


def test_train_on_a_folder_with_own_class_names_from_a_file(tmp_path, capsys):
    """Finding 1: `--dataset folder --num_classes 4` used to fail (a Python-only fix)."""
    data_dir = _four_class_folder(tmp_path / "mine")
    names_file = tmp_path / "classes.txt"
    names_file.write_text("road\ncar\n\ntree\nsky\n")
    out = tmp_path / "run"
    assert _run("train", "--dataset", "folder", "--data_dir", data_dir, "--class_names",
                str(names_file), "--model", "deeplabv3_mobilenetv2", "--crop_size", "20,24",
                "--batch_size", "2", "--steps", "2", "--checkpoint_every", "2",
                "--output_dir", str(out)) == 0
    printed = capsys.readouterr().out
    assert "4 classes: road, car, tree, sky" in printed and "over 2 of 2 images" in printed
    restored = keras.saving.load_model(str(out / "model.keras"), compile=False)
    assert restored.class_names == ("road", "car", "tree", "sky")
    np.testing.assert_array_equal(restored.palette, classes.voc_palette(4))
    metrics = json.load(open(out / "metrics_val.json"))
    assert set(metrics["per_class_iou"]) == {"road", "car", "tree", "sky"}
    assert metrics["images_found"] == 2
    # A JSON class file and --num_classes alone (class_i names) work for evaluate.
    json_file = tmp_path / "classes.json"
    json_file.write_text(json.dumps(["road", "car", "tree", "sky"]))
    assert _run("evaluate", "--dataset", "folder", "--data_dir", data_dir, "--class_names",
                str(json_file), "--model", str(out / "model.keras"), "--output_dir",
                str(tmp_path / "eval"), "--max_images", "1") == 0
    printed = capsys.readouterr().out
    assert "first 1 of 2 images" in printed and "over 1 of 2 images found" in printed


def test_backbone_weights_flag(tmp_path, monkeypatch, capsys):
    """Finding 4: the CLI had no --backbone_weights flag."""
    from deeplab_keras.weights import imagenet_backbones

    seen = []
    monkeypatch.setattr(imagenet_backbones, "load_backbone_weights",
                        lambda model, weights, **kw: seen.append((model.name, weights)))
    data_dir = _four_class_folder(tmp_path / "mine", n_val=0)
    assert _run("train", "--dataset", "folder", "--data_dir", data_dir, "--num_classes", "4",
                "--model", "deeplabv3_mobilenetv2", "--backbone_weights", "imagenet",
                "--crop_size", "20,24", "--batch_size", "2", "--steps", "1",
                "--checkpoint_every", "1", "--output_dir", str(tmp_path / "run")) == 0
    assert [w for _, w in seen] == ["imagenet"]
    assert "no 'val' split folder" not in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (("--batch_size", "0"), "--batch_size=0: 0 is not a positive integer"),
    (("--batch_size", "-3"), "--batch_size=-3"),
    (("--num_classes", "0"), "--num_classes=0"),
    (("--steps", "0"), "--steps=0"),
    (("--scale_range", "2,0.5"), "--scale_range must be 'min,max' with min <= max"),
    (("--crop_size", "0,10"), "--crop_size must be two positive"),
    (("--backend", "torch"), "torch backend is not supported"),
    (("--class_names", "a,b,a"), "distinct"),
    (("--num_classes", "5", "--class_names", "a,b"), "2 names for --num_classes 5"),
])
def test_bad_flag_values_fail_before_keras_with_the_flag_named(tmp_path, capsys, args, message):
    """Findings 1, 2 and 8: each used to crash late, be ignored or name a Python argument."""
    data_dir = _four_class_folder(tmp_path / "mine")
    code = _run("train", "--dataset", "folder", "--data_dir", data_dir, "--num_classes", "4",
                *args)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "total_steps" not in err


def test_builtin_layout_refuses_a_different_class_count(tmp_path, capsys):
    """Finding 1: `--dataset camvid --num_classes 4` trained, then failed after saving."""
    assert _run("train", "--dataset", "camvid", "--data_dir", str(tmp_path),
                "--num_classes", "4") == 2
    assert "use --dataset folder" in capsys.readouterr().err


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
