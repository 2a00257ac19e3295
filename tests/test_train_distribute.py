"""Distribution strategies: MirroredStrategy on two logical CPUs and synchronized batch norm,
MultiWorkerMirroredStrategy with two processes (only the chief writes checkpoints), JAX
data parallelism on two host devices, the factory's errors and `is_chief`.

Devices and clusters must be configured before the backend starts, so those checks run in
subprocesses (tests/scripts/*.py), each with a timeout and killed on failure.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import pytest

from deeplab_keras.train import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "tests", "scripts")
TIMEOUT_S = 240
# The TensorFlow subprocess checks set their own backend; run them once, in the TensorFlow
# pass of .ci/run, not again in the JAX pass.
tf_pass_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                  reason="TensorFlow subprocess check; runs in the TensorFlow "
                                         "pass of .ci/run")


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run_json(script, env, *args):
    result = subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *map(str, args)],
                            env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.requires_tf
@tf_pass_only
def test_mirrored_two_cpus_matches_one_device_and_syncs_batch_norm():
    report = _run_json("mirrored_worker.py", _env(KERAS_BACKEND="tensorflow"))
    assert report["replicas"] == 2
    assert report["weights_changed"] > 1e-3  # it trained
    # Same global batch of 8 (4 per replica), same initial weights, BN synchronized.
    assert report["max_abs_diff"] <= 1e-4, report
    assert report["end_step"] == 5
    assert report["checkpoint_files"] == ["ckpt-00000005.json", "ckpt-00000005.state.npz",
                                          "ckpt-00000005.weights.h5"]
    assert report["sync_reverted"]  # the trainer put `synchronized` back afterwards
    # Replica slices with means 0 and 10: synchronized moving statistics are the global
    # batch's (variance ~25), per-replica ones are far off.
    assert min(report["global_var"]) > 20
    assert report["sync_mean_err"] < 1e-4 and report["sync_var_err"] < 1e-3, report
    assert report["plain_var_err"] > 1.0 or report["plain_mean_err"] > 1.0, report


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.requires_tf
@tf_pass_only
def test_multi_worker_mirrored_two_processes_only_chief_writes(tmp_path):
    ports = ",".join(map(str, _free_ports(2)))
    env = _env(KERAS_BACKEND="tensorflow")
    workers = []
    try:
        for index in range(2):
            log = open(tmp_path / f"worker{index}.log", "w")
            workers.append((subprocess.Popen(
                [sys.executable, os.path.join(SCRIPTS, "multi_worker.py"), str(index), ports,
                 str(tmp_path / f"ckpt{index}"), str(tmp_path / f"weights{index}.npz")],
                env=env, stdout=log, stderr=subprocess.STDOUT, text=True), log))
        for process, _ in workers:
            process.wait(timeout=TIMEOUT_S)
    finally:
        for process, log in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    logs = [open(tmp_path / f"worker{i}.log").read() for i in range(2)]
    for (process, _), log in zip(workers, logs):
        assert process.returncode == 0, log[-4000:]
    reports = [json.loads([ln for ln in log.splitlines() if ln.startswith("{")][-1])
               for log in logs]
    assert [r["chief"] for r in reports] == [True, False]
    assert all(r["replicas"] == 2 and r["end_step"] == 6 for r in reports)
    # Only the chief wrote checkpoints; worker 1 never created its directory.
    assert sorted(os.listdir(tmp_path / "ckpt0")) == [
        f"ckpt-0000000{s}.{ext}" for s in (3, 6) for ext in ("json", "state.npz", "weights.h5")]
    assert not os.path.exists(tmp_path / "ckpt1")
    # Two workers with 4 images each = one device with the global batch of 8.
    assert reports[0]["max_abs_diff_vs_single_device"] <= 1e-4, reports[0]
    import numpy as np

    with np.load(tmp_path / "weights0.npz") as a, np.load(tmp_path / "weights1.npz") as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="JAX data parallelism; runs in the JAX-backend pass of .ci/run")
def test_jax_data_parallel_two_devices_matches_one_device():
    report = _run_json("data_parallel_worker.py", _env(KERAS_BACKEND="jax"))
    assert report["devices"] == 2
    assert report["weights_changed"] > 1e-3
    assert report["max_abs_diff"] <= 1e-4, report
    assert report["end_step"] == 5 and "ckpt-00000005.json" in report["checkpoint_files"]
    assert "'batch': 2" in report["kernel_sharding"], report


def test_factory_names_and_errors():
    with pytest.raises(ValueError, match="valid names are off, default, one_device, mirrored"):
        distribute.get_strategy("horovod")
    with pytest.raises(TypeError, match="strategy object"):
        distribute.get_strategy(3)
    for name in (None, "off", "default"):
        strategy = distribute.get_strategy(name)
        with strategy.scope():
            pass
        assert strategy.num_replicas_in_sync == 1
    assert distribute.get_strategy(strategy) is strategy  # objects pass through
    if keras.backend.backend() == "tensorflow":
        with pytest.raises(ValueError, match="JAX backend.*'mirrored'"):
            distribute.get_strategy("data_parallel")
        one = distribute.get_strategy("one_device", devices=["/cpu:0"])
        assert one.num_replicas_in_sync == 1
        with pytest.raises(ValueError, match="communication"):
            distribute.get_strategy("multi_worker_mirrored", communication="mpi")
    else:
        for name in ("mirrored", "multi_worker_mirrored", "one_device", "tpu"):
            with pytest.raises(ValueError, match="needs the TensorFlow backend.*data_parallel"):
                distribute.get_strategy(name)


def test_enable_sync_batch_norm_switches_nested_layers():
    from deeplab_keras.layers.batch_norm import BatchNorm

    inner = keras.Sequential([keras.Input((4, 4, 2)), BatchNorm()])
    model = keras.Sequential([keras.Input((4, 4, 2)), inner, keras.layers.BatchNormalization()])
    changed = distribute.enable_sync_batch_norm(model)
    layers = distribute.batch_norm_layers(model)
    assert len(layers) == 2
    if keras.backend.backend() == "tensorflow":
        assert changed == 2 and all(layer.synchronized for layer in layers)
        assert distribute.enable_sync_batch_norm(model, enabled=False) == 2
        assert not any(layer.synchronized for layer in layers)
    else:  # global statistics already; Keras refuses synchronized=True off TensorFlow
        assert changed == 0 and not any(layer.synchronized for layer in layers)


@pytest.mark.parametrize("config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}},
     True),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}},
     False),
])
def test_is_chief(monkeypatch, config, chief):
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert distribute.is_chief() is chief


def test_bad_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{cluster:")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}}))
    with pytest.raises(ValueError, match="no 'task'"):
        distribute.read_tf_config()
