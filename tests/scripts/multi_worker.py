"""One worker of a two-process MultiWorkerMirroredStrategy run on 127.0.0.1.

Usage: multi_worker.py INDEX PORT0,PORT1 CHECKPOINT_DIR OUT_NPZ
Run by tests/test_train_distribute.py; each worker gets its own checkpoint directory so the
test can see that only the chief (worker 0) writes.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

index, ports, checkpoint_dir, out = (int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3],
                                     sys.argv[4])
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
    "task": {"type": "worker", "index": index},
})

from deeplab_keras.train import distribute  # noqa: E402

# The strategy must exist before any other TensorFlow op.
strategy = distribute.get_strategy("multi_worker_mirrored", communication="ring")

import numpy as np  # noqa: E402
import train_common  # noqa: E402

from deeplab_keras.train import trainer  # noqa: E402

model_fn = train_common.same_start_model_fn()


run = trainer.fit(model_fn, train_common.dataset_fn("tf", batch=8), total_steps=6,
                  steps_per_checkpoint=3, checkpoint_dir=checkpoint_dir, seed=0,
                  strategy=strategy, verbose=0)
train_common.save_weights_npz(run.model, out)
report = {"index": index, "chief": distribute.is_chief(), "end_step": run.end_step,
          "replicas": strategy.num_replicas_in_sync}
if index == 0:
    # The same 6 global batches of 8 on one device, from the same initial weights.
    with tempfile.TemporaryDirectory() as scratch:
        single = trainer.fit(model_fn, train_common.dataset_fn("tf", batch=8), total_steps=6,
                             steps_per_checkpoint=6, checkpoint_dir=scratch, seed=0,
                             strategy="off", verbose=0)
    report["max_abs_diff_vs_single_device"] = max(
        float(np.abs(np.asarray(a) - np.asarray(b)).max())
        for a, b in zip(run.model.weights, single.model.weights))
print(json.dumps(report), flush=True)
