"""A new user's journey through `deeplab-keras`, each step a separate process as they would run
it (issue 14): their own 4-class folder -> train -> evaluate -> predict with a legend of their
class names -> the `.keras` alone, copied elsewhere, predicted again under JAX. Plus the
failures that used to hang, print a TensorFlow traceback or name Python arguments.

The journey runs once, in the TensorFlow pass of .ci/run; the JAX reload of a TensorFlow-written
file also runs in the TensorFlow-free environment (with tests/data/four_class_tf.keras).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from PIL import Image

import deeplab_keras  # noqa: F401 - registers the classes keras.saving.load_model needs
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "data", "four_class_tf.keras")
NAMES = ["road", "car", "tree", "sky"]
FIXTURE_PALETTE = [[128, 64, 128], [64, 0, 128], [128, 128, 0], [70, 130, 180]]

on_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the CLI journey runs once, in .ci/run's TensorFlow pass (issue 14's CI allowance)")


def _cli(*args, cwd, env=None, timeout=300):
    """`deeplab-keras ARGS` in a fresh process; (returncode, stdout, stderr)."""
    environment = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    environment.pop("DEEPLAB_KERAS_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", "deeplab_keras.cli", *args], cwd=cwd,
                            env=environment, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout, result.stderr


_make_folder = helpers.four_class_folder


def _legend_colours(panel_path, image_height):
    """Colours drawn below the image | mask | overlay row: the legend's swatches."""
    panel = np.asarray(Image.open(panel_path).convert("RGB"))
    assert panel.shape[0] > image_height + 10, "the panel has no legend under it"
    return {tuple(int(v) for v in c) for c in panel[image_height:].reshape(-1, 3)}


def _quiet(stderr):
    """Every stderr line that is not our own: CUDA probes, TF banners, tracebacks."""
    return [line for line in stderr.splitlines() if line.strip()
            and not line.startswith("deeplab-keras") and "━" not in line]


@pytest.mark.requires_tf
@on_tensorflow
def test_new_user_journey_train_evaluate_predict_then_jax(tmp_path):
    data = _make_folder(str(tmp_path / "mydata"))
    common = ["--dataset", "folder", "--data_dir", data, "--class_names", ",".join(NAMES)]
    code, out, err = _cli(
        "train", *common, "--model", "deeplabv3plus_mobilenetv2", "--crop_size", "24,32",
        "--scale_range", "0.75,1.25", "--batch_size", "2", "--steps", "4",
        "--checkpoint_every", "2", "--optimizer", "adamw", "--learning_rate", "1e-3",
        "--output_dir", "run", "--backend", "tensorflow", cwd=tmp_path,
        env={"KERAS_BACKEND": "jax"})  # the flag wins over the environment
    assert code == 0, err[-3000:]
    assert "4 classes: road, car, tree, sky" in out and "Checking every image/mask pair" in out
    assert _quiet(err) == [], err[-3000:]  # no CUDA noise, no TensorFlow banner
    run = json.load(open(tmp_path / "run" / "run.json"))
    assert run["software"]["backend"] == "tensorflow"

    code, out, err = _cli("evaluate", *common, "--model", "run/model.keras",
                          "--output_dir", "eval", cwd=tmp_path)
    assert code == 0, err[-3000:]
    assert "over 2 of 2 images found" in out
    assert all(name in out for name in NAMES)  # the per-class table uses the names

    code, out, err = _cli("predict", "--model", "run/model.keras", "--images",
                          os.path.join(data, "images", "val", "*.jpg"), "--output_dir", "pred",
                          cwd=tmp_path)
    assert code == 0, err[-3000:]
    assert "4 classes (road, car, tree, sky); backend tensorflow" in out
    assert "classes found:" in out and "classes predicted" not in out
    model = keras.saving.load_model(str(tmp_path / "run" / "model.keras"), compile=False)
    palette = {tuple(int(v) for v in c) for c in model.palette}
    assert palette <= _legend_colours(tmp_path / "pred" / "p0_panel.png", 24)

    # Only the .keras file, somewhere else, under JAX (the flag wins over KERAS_BACKEND).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(tmp_path / "run" / "model.keras", elsewhere / "mine.keras")
    code, out, err = _cli("predict", "--backend", "jax", "--model", "mine.keras", "--images",
                          os.path.join(data, "images", "val", "p1.jpg"), "--output_dir", "pred",
                          cwd=elsewhere, env={"KERAS_BACKEND": "tensorflow"})
    assert code == 0, err[-3000:]
    assert "4 classes (road, car, tree, sky); backend jax" in out
    assert palette <= _legend_colours(elsewhere / "pred" / "p1_panel.png", 24)
    tf_mask = np.asarray(Image.open(tmp_path / "pred" / "p1_mask.png"))
    jax_mask = np.asarray(Image.open(elsewhere / "pred" / "p1_mask.png"))
    assert np.mean(np.all(tf_mask == jax_mask, axis=-1)) > 0.99


@pytest.mark.tf_free_host
def test_a_tensorflow_written_keras_file_predicts_with_its_names_under_jax(tmp_path):
    """The .keras alone (written by TensorFlow: tests/data/make_four_class_model.py) carries
    its class names and colours to a JAX host (the TensorFlow-free pass runs this)."""
    shutil.copy(FIXTURE, tmp_path / "mine.keras")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), np.uint8)).save(
        tmp_path / "photo.png")
    code, out, err = _cli("predict", "--backend", "jax", "--model", "mine.keras", "--images",
                          "photo.png", "--output_dir", "pred", cwd=tmp_path)
    assert code == 0, err[-3000:]
    assert "4 classes (road, car, tree, sky); backend jax" in out
    palette = {tuple(c) for c in FIXTURE_PALETTE}
    assert palette <= _legend_colours(tmp_path / "pred" / "photo_panel.png", 30)
    assert _quiet(err) == [], err[-3000:]


@pytest.mark.tf_free_host
@pytest.mark.parametrize("split,n_val,last_file", [("train", 0, "p3.png"), ("val", 2, "p1.png")])
def test_a_bad_mask_value_in_the_last_file_fails_in_seconds_with_one_line(tmp_path, split, n_val,
                                                                          last_file):
    """The pre-scan reads every mask, the validation ones too (a bad val mask used to surface
    only at the first evaluation, after a checkpoint): the bad value sits in the last one."""
    data = _make_folder(str(tmp_path / "mydata"), n_val=n_val)
    last = os.path.join(data, "masks", split, last_file)
    mask = np.asarray(Image.open(last)).copy()
    mask[5, 7] = 9
    Image.fromarray(mask).save(last)
    code, out, err = _cli("train", "--dataset", "folder", "--data_dir", data, "--num_classes",
                          "4", "--crop_size", "24,32", "--steps", "2", "--output_dir", "run",
                          cwd=tmp_path, timeout=180)
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert os.path.join(split, last_file) in lines[0] and "9: 1 px" in lines[0]
    assert "Epoch" not in out and not os.path.exists(tmp_path / "run" / "checkpoints")


@pytest.mark.requires_tf
@on_tensorflow
def test_folder_flags_name_the_folders_the_mask_suffix_and_the_ignore_label(tmp_path):
    """--images_dir, --masks_dir, --mask_suffix and --ignore_label reach the folder layout
    through the CLI: without --ignore_label the scan rejects the void value, with it
    `evaluate` finds and scores every pair."""
    data = _make_folder(str(tmp_path / "mydata"))
    os.rename(os.path.join(data, "images"), os.path.join(data, "rgb"))
    os.rename(os.path.join(data, "masks"), os.path.join(data, "labels"))
    for split in ("train", "val"):
        folder = os.path.join(data, "labels", split)
        for name in os.listdir(folder):
            mask = np.asarray(Image.open(os.path.join(folder, name))).copy()
            mask[mask == 255] = 200
            Image.fromarray(mask).save(os.path.join(folder, name.replace(".png", "_mask.png")))
            os.remove(os.path.join(folder, name))
    flags = ["--dataset", "folder", "--data_dir", data, "--class_names", ",".join(NAMES),
             "--images_dir", "rgb", "--masks_dir", "labels", "--mask_suffix", "_mask"]
    code, out, err = _cli("train", *flags, "--crop_size", "24,32", "--steps", "2",
                          "--output_dir", "run", cwd=tmp_path, timeout=180)
    assert code == 1 and "4 training images, 2 validation images" in out, err[-3000:]
    assert "label 200" in err or "200: " in err, err[-3000:]
    shutil.copy(FIXTURE, tmp_path / "mine.keras")
    code, out, err = _cli("evaluate", *flags, "--ignore_label", "200", "--model", "mine.keras",
                          "--output_dir", "eval", cwd=tmp_path, timeout=180)
    assert code == 0, err[-3000:]
    assert "over 2 of 2 images found" in out, out[-3000:]
    scored = [line.split()[-1] for line in out.splitlines() if line.startswith("mean IoU")]
    assert scored == [str(2 * (24 * 32 - 3))], out[-3000:]  # the 3 void pixels per mask left out


@pytest.mark.requires_tf
@on_tensorflow
def test_an_error_inside_tf_data_is_one_line_and_the_process_exits(tmp_path):
    """A PNG whose header is fine but whose pixels are corrupt passes the header scan and
    fails inside tf.data: it used to print TensorFlow's traceback and then hang at exit."""
    data = _make_folder(str(tmp_path / "mydata"), n_val=0)
    bad = os.path.join(data, "images", "train", "p2.png")
    os.remove(os.path.join(data, "images", "train", "p2.jpg"))
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (24, 32, 3), np.uint8)).save(bad)
    content = bytearray(open(bad, "rb").read())
    middle = len(content) // 2
    content[middle:middle + 40] = bytes(40)
    open(bad, "wb").write(bytes(content))
    code, out, err = _cli("train", "--dataset", "folder", "--data_dir", data, "--num_classes",
                          "4", "--model", "deeplabv3_mobilenetv2", "--crop_size", "24,32",
                          "--batch_size", "4", "--steps", "2", "--output_dir", "run",
                          "--input", "tfdata", cwd=tmp_path, timeout=300)
    assert code == 1, err[-3000:]
    lines = [line for line in _quiet(err) + err.splitlines() if line.startswith("deeplab-keras")]
    assert _quiet(err) == [] and len(lines) == 1, err[-3000:]
    assert "p2.png: cannot decode the image file" in lines[0]


@pytest.mark.requires_tf
def test_a_script_that_peeks_one_batch_exits(tmp_path):
    """One batch from make_tf_dataset, iterator left alive at exit: the process used to hang
    (a tf.data worker calling back into Python while the interpreter finalised)."""
    data = _make_folder(str(tmp_path / "mydata"), n_val=0)
    script = textwrap.dedent(f"""
        from deeplab_keras import data
        layout = data.folder_layout(4)
        examples = data.list_examples(layout, {data!r}, "train")
        it = iter(data.make_tf_dataset(examples, layout, batch_size=2, crop_size=(24, 32)))
        images, masks = next(it)
        print("peeked", tuple(images.shape))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, timeout=120,
                            env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "peeked (2, 24, 32, 3)" in result.stdout


@pytest.mark.tf_free_host
def test_help_answers_without_keras_and_per_command(tmp_path):
    script = textwrap.dedent("""
        import contextlib, io, sys
        from deeplab_keras import cli
        for argv in (["--help"], ["train", "--help"], ["predict", "-h"]):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                assert cli.run(["deeplab-keras", *argv]) == 0
            print("=====", " ".join(argv))
            print(buffer.getvalue())
        print("loaded:", sorted(m for m in ("keras", "tensorflow", "jax") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, timeout=120,
                            env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded: []" in result.stdout and result.stderr == ""
    full, train, predict = result.stdout.split("=====")[1:]
    for layout in ("folder", "camvid", "voc_aug", "cityscapes", "ade20k"):
        assert layout in full and layout in train
    assert "Commands:" in full and "--images" in full
    assert "deeplab-keras train:" in train and "--steps" in train and "--images:" not in train
    assert "deeplab-keras predict:" in predict and "--images:" in predict
    assert "--steps" not in predict
