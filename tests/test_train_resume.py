"""A training process killed (SIGKILL) at arbitrary steps and during a checkpoint save, then
restarted until it finishes, ends with weights bit-identical to an uninterrupted run.

Runs on the current backend: tf.data input on TensorFlow, a PyDataset without TensorFlow on
JAX (tests/scripts/resume_worker.py). The model has BatchNorm, Dropout (random state) and
Adam (slot variables), all of which a checkpoint must carry for the run to repeat exactly.
"""

import os
import random
import signal
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.tf_free_host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "scripts", "resume_worker.py")
TOTAL_STEPS, EVERY = 40, 5
TIMEOUT_S = 240


def _env(tmp_path):
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend(), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # JAX: compile once for all the runs (a cache hit yields the same executable).
    env.update(JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def _command(checkpoint_dir, out, *extra):
    data = "tf" if keras.backend.backend() == "tensorflow" else "py"
    return [sys.executable, WORKER, str(checkpoint_dir), str(out), "--data", data,
            "--total_steps", str(TOTAL_STEPS), "--every", str(EVERY), *extra]


def _run_until(command, env, kill_at_step=None):
    """Runs the worker; SIGKILLs it once it reports `kill_at_step`, or after TIMEOUT_S.

    Returns (output lines, whether it was killed at the step, exit code)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(TIMEOUT_S, process.kill)
    watchdog.start()
    lines, killed = [], False
    try:
        for line in process.stdout:
            lines.append(line.rstrip())
            if kill_at_step is not None and line.strip() == f"step {kill_at_step}":
                os.kill(process.pid, signal.SIGKILL)
                killed = True
                break
        process.wait(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    return lines, killed, process.returncode


def _weights(path):
    with np.load(path) as data:
        return [data[key] for key in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


def _starts(lines):
    return [int(line.split()[1]) for line in lines if line.startswith("start ")]


def test_killed_and_restarted_training_is_bit_identical(tmp_path):
    env = _env(tmp_path)
    reference_out = tmp_path / "reference.npz"
    reference = subprocess.Popen(_command(tmp_path / "reference", reference_out), env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        rng = random.Random(20240611)
        kill_steps = [rng.randint(2, 13), None, rng.randint(21, 34)]
        crash_save_at = 20  # second run: dies inside the save of ckpt 20
        out = tmp_path / "resumed.npz"
        directory = tmp_path / "resumed"
        history = []
        for attempt, kill_at in enumerate(kill_steps):
            extra = ["--delay", "0.02"]
            if kill_at is None:
                extra += ["--crash_in_save_at", str(crash_save_at)]
            lines, killed, code = _run_until(_command(directory, out, *extra), env, kill_at)
            history.append((kill_at, _starts(lines), code))
            assert not out.exists(), f"attempt {attempt} finished before it was interrupted"
            if kill_at is None:
                assert code == 137 and any("crashing while saving" in ln for ln in lines), (
                    "\n".join(lines[-30:]))
                # The torn step-20 checkpoint has its weights file but no record.
                assert (directory / "ckpt-00000020.weights.h5").exists()
                assert not (directory / "ckpt-00000020.json").exists()
            else:
                assert killed, "\n".join(lines[-30:])
        lines, _, code = _run_until(_command(directory, out), env)
        history.append((None, _starts(lines), code))
        assert code == 0, "\n".join(lines[-40:])

        starts = [h[1][0] for h in history]
        # Each restart resumed from a checkpoint at or before the step it died; after the
        # crash inside the save of step 20 it resumed from 15.
        assert starts[0] == 0 and starts[1] <= kill_steps[0] and starts[1] % EVERY == 0
        assert starts[2] == crash_save_at - EVERY, history
        assert kill_steps[2] - EVERY <= starts[3] <= kill_steps[2] and starts[3] % EVERY == 0

        reference_log, _ = reference.communicate(timeout=TIMEOUT_S)
        assert reference.returncode == 0, reference_log[-3000:]
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.communicate()
    expected, actual = _weights(reference_out), _weights(out)
    assert len(expected) == len(actual) == 8
    for a, b in zip(expected, actual):
        assert np.array_equal(a, b), f"max abs diff {np.abs(a - b).max()} (history {history})"
    # max_to_keep=3 in the worker: only the three newest complete checkpoints remain.
    names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    assert names == ["ckpt-00000030.json", "ckpt-00000035.json", "ckpt-00000040.json"]
