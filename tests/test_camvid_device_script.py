"""The issue-18 device pipeline end to end at tiny sizes on the CPU (marker `real_data`).

zoo/camvid_gpu/pack_data.py packs 4 train + 2 val CamVid frames; train_on_device.py trains a
tiny DeepLabV3+ for 2 steps on JAX in a process where TensorFlow cannot be imported;
finish_bundle.py loads the JAX-trained shards on TensorFlow, writes the bundled float16 file,
checks TF's logits against JAX's on the probe frame and scores 2 val frames.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMVID = os.path.join(ROOT, "..", "shared", "data", "camvid")
SCRIPTS = os.path.join(ROOT, "zoo", "camvid_gpu")

pytestmark = pytest.mark.real_data

# Runs train_on_device.py with TensorFlow made unimportable: any import of it fails the run.
NO_TF = ("import runpy, sys; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
         "runpy.run_path(sys.argv[0], run_name='__main__')")
TINY = ["--steps", "2", "--crop_size", "64", "--batch_size", "2", "--width", "4",
        "--depths", "1,1,1,1", "--stem_filters", "8", "--aspp_filters", "8",
        "--decoder_filters", "8", "--low_level_filters", "8", "--eval_every", "1",
        "--log_every", "1", "--eval_batch_size", "2", "--precision", "float32",
        "--threads", "2", "--shard_mib", "0.1"]


def run(args, backend, tmp_path):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONUNBUFFERED="1", OUT="",
               KERAS_HOME=str(tmp_path / "keras_home"))
    done = subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_pack_train_on_jax_finish_on_tensorflow(tmp_path):
    if not os.path.isdir(CAMVID):
        pytest.skip(f"CamVid is not at {os.path.abspath(CAMVID)}")
    pack, out, bundle = tmp_path / "pack", tmp_path / "out", tmp_path / "bundle" / "weights.h5"

    printed = run([os.path.join(SCRIPTS, "pack_data.py"), "--data_dir", CAMVID, "--output",
                   str(pack), "--max_train", "4", "--max_val", "2", "--no_wheels"],
                  "jax", tmp_path)
    assert len(os.listdir(pack / "train")) == 4 and len(os.listdir(pack / "valannot")) == 2
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["jpeg_quality"] == 95
    assert 0 < manifest["splits"]["train"]["mean_abs_diff"] < 4  # JPEG-95: ~1.5 levels
    assert "mean |diff|" in printed

    printed = run(["-c", NO_TF, os.path.join(SCRIPTS, "train_on_device.py"), "--data_dir",
                   str(pack), "--output_dir", str(out)] + TINY, "jax", tmp_path)
    log = json.loads((out / "train_log.json").read_text())
    assert log["status"] == "done" and log["steps"] == 2 and log["stopped_by"] == "steps"
    assert log["tensorflow_imported"] is False
    assert [c["step"] for c in log["curve"]] == [1, 2]
    assert all(np.isfinite(c["loss"]) and c["loss"] > 0 for c in log["curve"])
    assert [e["step"] for e in log["evaluations"]] == [1, 2]
    assert all(0 <= e["val_miou"] <= 1 for e in log["evaluations"])
    assert log["class_weights"] and len(log["class_weights"]) == 11
    shards = log["best"]["files"]
    assert len(shards) > 1  # --shard_mib 0.1 splits even the tiny model
    assert all((out / name).stat().st_size < 16 * 2 ** 20 for name in shards)
    assert (out / "probe.npz").is_file() and (out / "train_log.txt").read_text()
    check = log["float16_check"]
    assert abs(check["val_miou_float16_weights"] - check["val_miou_float32_weights"]) < 0.05

    printed = run([os.path.join(SCRIPTS, "finish_bundle.py"), "--run_dir", str(out),
                   "--output", str(bundle), "--data_dir", CAMVID, "--max_images", "2"],
                  "tensorflow", tmp_path)
    report = json.loads((bundle.parent / "weights.finish.json").read_text())
    assert report["backend"] == "tensorflow"
    assert report["size"] == bundle.stat().st_size
    assert report["num_params"] == log["num_params"]
    probe = report["probe"]
    assert probe["passed"] and probe["label_agreement"] == 1.0
    assert probe["max_abs_logit_diff"] < 1e-3 * probe["max_abs_logit"]
    assert report["evaluation"]["images"] == 2 and 0 <= report["evaluation"]["miou"] <= 1
    assert "passed" in printed

    import h5py

    with h5py.File(bundle, "r") as f:  # the bundled format: float16, BN statistics float32
        dtypes = {str(d.attrs["path"]): d.dtype.name for d in f["weights"].values()}
    assert {dt for p, dt in dtypes.items() if p.endswith("moving_variance")} == {"float32"}
    assert {dt for p, dt in dtypes.items() if p.endswith("kernel")} == {"float16"}

    # The registered bundled model is never the output, and an existing file needs --force.
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    again = subprocess.run([sys.executable, os.path.join(SCRIPTS, "finish_bundle.py"),
                            "--run_dir", str(out), "--output", str(bundle)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "--force" in again.stderr
