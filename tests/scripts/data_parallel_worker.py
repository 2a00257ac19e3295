"""JAX `data_parallel` strategy over two (forced) host CPU devices vs one device.

Run by tests/test_train_distribute.py in a subprocess: the device count must be set before
JAX starts. Prints one JSON line with the measurements.
"""

import json
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.modules["tensorflow"] = None  # a JAX host without TensorFlow

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import train_common  # noqa: E402

from deeplab_keras.train import trainer  # noqa: E402

model_fn = train_common.same_start_model_fn()


def train(strategy, workdir):
    run = trainer.fit(model_fn, train_common.dataset_fn("py", batch=8), total_steps=5,
                      steps_per_checkpoint=5, checkpoint_dir=workdir, seed=0,
                      strategy=strategy, verbose=0)
    return run, [np.asarray(w) for w in run.model.weights]


with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
    _, single = train(None, one)
    run, parallel = train("data_parallel", two)
    kernel_sharding = str(run.model.weights[0].value.sharding)
    files = sorted(os.listdir(two))
keras.distribution.set_distribution(None)
print(json.dumps({
    "devices": jax.device_count(),
    "distribution": type(keras.distribution.distribution()).__name__,
    "weights_changed": max(float(np.abs(a - b).max())
                           for a, b in zip(model_fn.initial_weights, single)),
    "max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(single, parallel)),
    "end_step": run.end_step,
    "checkpoint_files": files,
    "kernel_sharding": kernel_sharding,
}))
