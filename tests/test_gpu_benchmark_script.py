"""Issue 17's GPU command, `benchmarks/run_gpu_on_device.sh`, rehearsed on a CPU (`parity` tier).

The script is what a lent GPU machine runs (15 device minutes per session, so it must not fail
there). Here it runs end to end at the smoke sizes with DEVICE=cpu, without torch.compile, in a
process where TensorFlow cannot be imported (the device machines have none): inference fp32 and
bf16 against torchvision, then the bf16 training step against torchvision. Checked: both parts
finish, print their RESULT_JSON, and ours agrees with torchvision's forward pass.
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.parity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def result_json(log_path):
    lines = [line for line in log_path.read_text().splitlines()
             if line.startswith("RESULT_JSON ")]
    assert len(lines) == 1, f"{log_path.name}: expected one RESULT_JSON line:\n" \
                            f"{log_path.read_text()[-3000:]}"
    return json.loads(lines[0][len("RESULT_JSON "):])


def test_gpu_benchmark_script_smoke_on_cpu(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    pytest.importorskip("jax")
    no_tf = tmp_path / "no_tf" / "tensorflow"
    no_tf.mkdir(parents=True)
    (no_tf / "__init__.py").write_text(
        "raise ImportError('TensorFlow is blocked: the GPU machines have none')\n")
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, SKIP_WHEELS="1", SMOKE="1",
               DEVICE="cpu", TORCH_COMPILE="0", PYTHONPATH=str(no_tf.parent),
               KERAS_HOME=str(tmp_path / "keras_home"))
    done = subprocess.run(["bash", "benchmarks/run_gpu_on_device.sh"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert {"run.log", "inference.log", "train_step.log"} <= set(os.listdir(out))
    run_log = (out / "run.log").read_text()
    assert "inference exit status 0" in run_log and "training step exit status 0" in run_log

    inference = result_json(out / "inference.log")
    assert inference["keras_backend"] == "jax" and inference["smoke"] is True
    figures = inference["figures"]
    assert set(figures) == {"ours_jit_fp32", "torchvision_cl_fp32",
                            "ours_jit_bf16", "torchvision_cl_bf16"}
    assert all(f["images_per_s"] > 0 for f in figures.values())
    assert figures["ours_jit_fp32"]["best_peer"] == "torchvision_cl_fp32"
    assert figures["ours_jit_bf16"]["best_peer"] == "torchvision_cl_bf16"
    fp32, bf16 = inference["parity"]["ours_jit_fp32"], inference["parity"]["ours_jit_bf16"]
    # Same weights on both sides: float32 agrees to rounding, bfloat16 to its 8-bit mantissa.
    assert fp32["max_abs_diff"] < 1e-4 * fp32["max_abs_logit"] + 1e-6
    assert bf16["max_abs_diff"] < 0.05 * bf16["max_abs_logit"]

    train = result_json(out / "train_step.log")
    assert train["backend"] == "jax" and train["precision"] == "bf16"
    assert set(train["figures"]) == {"ours", "torchvision_cl"}
    ours, peer = train["figures"]["ours"], train["figures"]["torchvision_cl"]
    assert ours["parameters"] == peer["parameters"]
    assert ours["dtype_policy"] == "mixed_bfloat16"
    assert ours["images_per_s"] > 0 and peer["images_per_s"] > 0
    assert ours["best_peer"] == "torchvision_cl"
