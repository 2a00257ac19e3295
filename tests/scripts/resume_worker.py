"""Trains the tiny model with `deeplab_keras.train.trainer.fit`; run, killed and rerun by
tests/test_train_resume.py.

Usage: resume_worker.py CHECKPOINT_DIR OUT_NPZ [--data tf|py] [--total_steps 40]
       [--every 5] [--seed 3] [--delay 0.0] [--crash_in_save_at STEP]

Prints "step N" after every batch. `--crash_in_save_at STEP` ends the process (os._exit,
like a kill) in the middle of saving checkpoint STEP: after its weights file is in place,
before its state file and JSON record. Writes the final weights to OUT_NPZ when training
completes.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

parser = argparse.ArgumentParser()
parser.add_argument("checkpoint_dir")
parser.add_argument("out")
parser.add_argument("--data", default="tf", choices=("tf", "py"))
parser.add_argument("--total_steps", type=int, default=40)
parser.add_argument("--every", type=int, default=5)
parser.add_argument("--seed", type=int, default=3)
parser.add_argument("--delay", type=float, default=0.0)
parser.add_argument("--crash_in_save_at", type=int, default=None)
args = parser.parse_args()

if os.environ.get("KERAS_BACKEND") == "jax" and args.data == "py":
    # What a JAX host without TensorFlow sees (keras.utils.set_random_seed would otherwise
    # import TensorFlow just to seed it, which costs seconds per run).
    sys.modules["tensorflow"] = None

import keras  # noqa: E402
import train_common  # noqa: E402

from deeplab_keras.train import checkpoint as checkpoint_lib  # noqa: E402
from deeplab_keras.train import trainer  # noqa: E402

if args.crash_in_save_at is not None:
    write_state = checkpoint_lib._write_state
    crash_name = os.path.basename(checkpoint_lib.checkpoint_prefix(".", args.crash_in_save_at))

    def crashing_write_state(tmp, arrays):
        # The temp state file is written, not yet renamed: a kill right there.
        write_state(tmp, arrays)
        if os.path.basename(tmp).startswith(f".{crash_name}.state.npz."):
            print(f"crashing while saving {tmp}", flush=True)
            os._exit(137)

    checkpoint_lib._write_state = crashing_write_state


class PrintStep(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.step = None

    def on_train_begin(self, logs=None):
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        print(f"start {self.step}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        print(f"step {self.step}", flush=True)
        if args.delay:
            time.sleep(args.delay)


run = trainer.fit(train_common.make_model, train_common.dataset_fn(args.data),
                  total_steps=args.total_steps, steps_per_checkpoint=args.every,
                  checkpoint_dir=args.checkpoint_dir, seed=args.seed, max_to_keep=3,
                  callbacks=[PrintStep()], verbose=0)
train_common.save_weights_npz(run.model, args.out)
print(f"done start={run.start_step} end={run.end_step} restored={run.restored_from}",
      flush=True)
