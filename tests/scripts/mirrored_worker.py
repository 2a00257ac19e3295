"""MirroredStrategy on two logical CPUs vs one device; synchronized batch-norm statistics.

Run by tests/test_train_distribute.py in a subprocess: the logical CPUs must be configured
before TensorFlow initialises its devices. Prints one JSON line with the measurements.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import train_common  # noqa: E402

from deeplab_keras.train import distribute  # noqa: E402
from deeplab_keras.train import trainer  # noqa: E402


def train(strategy, initial, steps, workdir):
    def model_fn():
        model = train_common.make_model(dropout=0.0, optimizer="sgd")
        model.set_weights(initial)
        return model

    run = trainer.fit(model_fn, train_common.dataset_fn("tf", batch=8), total_steps=steps,
                      steps_per_checkpoint=steps, checkpoint_dir=workdir, seed=0,
                      strategy=strategy, verbose=0)
    return [np.asarray(w) for w in run.model.weights], run


def batch_norm_statistics(strategy, synchronized):
    """One training step of BN whose two replicas see batches with means 0 and 10."""
    with strategy.scope():
        inputs = keras.Input((4, 4, 2))
        outputs = keras.layers.Conv2D(1, 1)(keras.layers.BatchNormalization(momentum=0.0)(inputs))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
        if synchronized:
            assert distribute.enable_sync_batch_norm(model) == 1
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (8, 4, 4, 2)).astype("float32")
    x[4:] += 10.0  # replica 1's half of the global batch
    model.fit(x, np.zeros((8, 4, 4, 1), "float32"), batch_size=8, epochs=1, verbose=0,
              shuffle=False)
    bn = model.layers[1]
    return (np.asarray(bn.moving_mean), np.asarray(bn.moving_variance),
            x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2)))


def main():
    mirrored = distribute.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2, mirrored.num_replicas_in_sync
    initial = train_common.make_model(dropout=0.0, optimizer="sgd").get_weights()
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        single, _ = train(None, initial, 5, one)
        multi, run = train(mirrored, initial, 5, two)
        files = sorted(os.listdir(two))
    changed = max(float(np.abs(a - b).max()) for a, b in zip(initial, single))
    diff = max(float(np.abs(a - b).max()) for a, b in zip(single, multi))
    sync_mean, sync_var, global_mean, global_var = batch_norm_statistics(mirrored, True)
    plain_mean, plain_var, _, _ = batch_norm_statistics(mirrored, False)
    print(json.dumps({
        "replicas": mirrored.num_replicas_in_sync,
        "weights_changed": changed,
        "max_abs_diff": diff,
        "end_step": run.end_step,
        "checkpoint_files": files,
        "sync_reverted": not any(layer.synchronized
                                 for layer in distribute.batch_norm_layers(run.model)),
        "sync_mean_err": float(np.abs(sync_mean - global_mean).max()),
        "sync_var_err": float(np.abs(sync_var - global_var).max()),
        "plain_var_err": float(np.abs(plain_var - global_var).max()),
        "plain_mean_err": float(np.abs(plain_mean - global_mean).max()),
        "global_var": global_var.tolist(),
    }))


if __name__ == "__main__":
    main()
