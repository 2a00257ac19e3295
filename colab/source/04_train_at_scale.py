# %% [markdown]
# # Train at scale: tf.distribute, mixed precision, checkpoints
#
# Training DeepLab for real means hours on a GPU or TPU, and on Colab a runtime that can be
# reset at any moment. This notebook walks through the pieces `deeplab-keras` gives you for
# that, on a tiny dataset so that every cell runs for real.
#
# What this notebook teaches:
#
# - **tf.distribute**: pick the strategy from the hardware found (`TPUStrategy` on a TPU,
#   `MirroredStrategy` over the GPUs, and `MirroredStrategy` over **2 logical CPUs** when there
#   is no accelerator, so the multi-replica code path runs even here), with batch norm
#   synchronized across replicas;
# - **mixed precision**: `mixed_float16` on a GPU, `mixed_bfloat16` on a TPU, and what it does
#   to the model (checked on the CPU with bfloat16);
# - **checkpoints and resume**: `deeplab_keras.train.trainer.fit` checkpoints atomically every
#   N steps; we pull the plug in the middle of training, build a fresh model, and the same call
#   continues from the saved step with the same batches;
# - **TensorBoard**: inline on Colab, and the same event files read back and plotted with
#   matplotlib (loss, mIoU, learning rate);
# - **JAX**: the `data_parallel` alternative (`keras.distribution.DataParallel`), run through
#   the `deeplab-keras train` command line in its own process on 2 host devices.
#
# Runtime: Colab GPU or TPU runtime recommended; runs on CPU. Time needed: about 4 minutes on
# a 2-core CPU (most of it is TensorFlow and XLA compiling the training step, three times; the
# steps themselves are short).
#
# The model trains from scratch for a few dozen steps on two street scenes, so its masks are
# still poor: this notebook is about the machinery, not the accuracy (see the fine-tuning
# notebook for that).

# %%
CROP = (128, 160) if FULL else (32, 48)  # training crop (height, width)
BATCH_PER_REPLICA = 4 if FULL else 1  # images per replica per step
STEPS = 24 if FULL else 4  # training steps of the whole run
CKPT_EVERY = 4 if FULL else 2  # steps between checkpoints (and TensorBoard points)
RESET_AFTER = 22 if FULL else 3  # the simulated runtime reset comes after this step
EVAL_EVERY = 2 if FULL else 0  # validate every N checkpoints (0: never)
JAX_STEPS = 4 if FULL else 2  # steps of the JAX data_parallel run

# %% [markdown]
# ## 1. Find the hardware and choose a strategy
#
# A distribution strategy runs one copy of the model (a *replica*) per device, splits every
# global batch between them, and combines (all-reduces) the gradients before each update.
# Which one to use depends on what the runtime has:
#
# | found | `get_strategy(...)` | replicas |
# |---|---|---|
# | a TPU (Colab TPU runtime) | `"tpu"`: `TPUStrategy` | one per core (8 on a v2-8) |
# | GPUs | `"mirrored"`: `MirroredStrategy` over all GPUs | 1 on Colab |
# | only a CPU | `"mirrored"` over 2 *logical* CPUs | 2 |
#
# Two logical CPUs are two TensorFlow devices on the same processor: no speed-up, but the
# same code path as two GPUs (per-replica batches, all-reduced gradients, synchronized batch
# norm), which is what we want to see here. TensorFlow only accepts that split **before it
# initialises its devices**, so this cell comes first, before anything else touches
# TensorFlow. (Run it twice and it says so: restart the runtime to change devices.)

# %%
import glob
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"  # tf.distribute; JAX gets its own process (part 6)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from deeplab_keras.cli.main import quiet_native_start

with quiet_native_start():  # the command line's filter for TensorFlow's start-up notes
    import tensorflow as tf

    GPUS = tf.config.list_physical_devices("GPU")
tf.get_logger().setLevel("WARNING")  # MirroredStrategy logs every all-reduce at INFO level

IN_COLAB = "google.colab" in sys.modules
# A TPU VM shows its chips as /dev/accel* (v2-v4) or /dev/vfio/<n> (v5e and later).
TPU_FOUND = bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))
HARDWARE = "tpu" if TPU_FOUND else "gpu" if GPUS else "cpu"
if HARDWARE == "gpu":
    for gpu in GPUS:  # allocate GPU memory as needed instead of all of it up front
        tf.config.experimental.set_memory_growth(gpu, True)
elif HARDWARE == "cpu":
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    except RuntimeError as error:  # devices already initialised (the cell ran before)
        print(f"Could not split the CPU ({error}); restart the runtime to get 2 replicas.")

from deeplab_keras.train import distribute

if HARDWARE == "tpu":
    strategy = distribute.get_strategy("tpu", tpu="local")  # untested here: no TPU
elif HARDWARE == "gpu":
    strategy = distribute.get_strategy("mirrored")  # every GPU
else:
    logical = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = distribute.get_strategy("mirrored", devices=logical)
print(f"hardware: {HARDWARE}; strategy: {type(strategy).__name__} with "
      f"{strategy.num_replicas_in_sync} replica(s): {list(strategy.extended.worker_devices)}")

# %% [markdown]
# ## 2. A tiny dataset in a folder
#
# The package ships three CamVid frames (360x480) with their label PNGs (classes 0..10,
# 11 = void). We lay them out like your own data would be (README, "Your own data"):
# `images/<split>/*.jpg` and `masks/<split>/<same name>.png`, two for training and one for
# validation, and describe them with `data.folder_layout`: 11 classes with CamVid's names and
# colours, and 11 as the label to ignore.
#
# `--batch_size` and `batch_size=` in this package are **global** batch sizes: with N replicas
# every replica gets 1/N of each batch. So the global batch is the per-replica batch times the
# number of replicas, and it grows with the hardware.

# %%
import shutil
import tempfile

import numpy as np

from deeplab_keras import assets
from deeplab_keras import data

# On Colab a fixed folder, so that the checkpoints are still there after a runtime restart
# (part 4); anywhere else a fresh temporary folder.
WORK = "/content/train_at_scale" if IN_COLAB else tempfile.mkdtemp(prefix="deeplab_keras_04_")
DATA_DIR = os.path.join(WORK, "data")
picks = {"train": [0, 1], "val": [2]}
for split, indices in picks.items():
    for kind in ("images", "masks"):
        os.makedirs(os.path.join(DATA_DIR, kind, split), exist_ok=True)
    for i in indices:
        image, label = assets.example_images()[i], assets.example_labels()[i]
        stem = os.path.splitext(os.path.basename(image))[0]
        shutil.copy(image, os.path.join(DATA_DIR, "images", split, stem + ".jpg"))
        shutil.copy(label, os.path.join(DATA_DIR, "masks", split, stem + ".png"))

camvid = data.get_layout("camvid")
layout = data.folder_layout(camvid.num_classes, ignore_label=11, class_names=camvid.class_names,
                            palette=camvid.palette)
train_examples = data.list_examples(layout, DATA_DIR, "train")
val_examples = data.list_examples(layout, DATA_DIR, "val")
counts = data.scan_examples(train_examples + val_examples, layout)  # checks every pair
GLOBAL_BATCH = BATCH_PER_REPLICA * strategy.num_replicas_in_sync
print(f"\n{len(train_examples)} training and {len(val_examples)} validation images in {DATA_DIR}")
print(f"global batch {GLOBAL_BATCH} = {BATCH_PER_REPLICA} per replica x "
      f"{strategy.num_replicas_in_sync} replicas; crop {CROP[0]}x{CROP[1]}")

# %% [markdown]
# The training stream is a pure function of `(seed, step)`: batch *k* is always the same
# random crops of the same images, whatever happened before. That is what lets a resumed run
# continue with exactly the batches an uninterrupted one would have seen. Here is batch 0 as
# the replicas receive it (`data.load_batch` gives the same batches as the `tf.data` pipeline
# the trainer uses):

# %%
import matplotlib.pyplot as plt

from deeplab_keras.data import classes

SCALE_RANGE = (0.5, 1.0)  # random zoom of the training crops
images, masks = data.load_batch(train_examples, layout, batch_index=0, batch_size=GLOBAL_BATCH,
                                crop_size=CROP, seed=0, scale_range=SCALE_RANGE)
replicas = strategy.num_replicas_in_sync
fig, axes = plt.subplots(replicas, BATCH_PER_REPLICA, squeeze=False,
                         figsize=(2.6 * BATCH_PER_REPLICA, 2.6 * replicas))
for i in range(GLOBAL_BATCH):
    ax = axes[i // BATCH_PER_REPLICA, i % BATCH_PER_REPLICA]
    colours = classes.colorize(masks[i], layout.palette)  # void (11) stays black
    ax.imshow(np.concatenate([images[i].astype(np.uint8), colours], axis=0))
    ax.set_title(f"replica {i // BATCH_PER_REPLICA}, sample {i % BATCH_PER_REPLICA}",
                 fontsize=9)
    ax.axis("off")
fig.suptitle("batch 0: crop (top) and its mask (bottom), split between the replicas")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Mixed precision
#
# With a mixed policy every layer *computes* in 16 bits (half the memory traffic, and the
# fast matrix units of GPUs and TPUs) while its *variables* stay float32, so small updates
# are not rounded away. `deeplab-keras` models keep the final logits in float32 (a linear
# `logits` layer with dtype float32), so the softmax and the loss are computed at full precision.
#
# - GPU: `mixed_float16`. float16 has a narrow range, so Keras wraps the optimizer in a
#   `LossScaleOptimizer` when you compile (small gradients would otherwise underflow to 0).
# - TPU: `mixed_bfloat16`. bfloat16 has float32's range, no loss scaling needed.
#
# The policy applies to models built **after** `set_global_policy`. Below, the same weights
# run once in float32 and once under `mixed_bfloat16`; it runs on any hardware.

# %%
import keras

import deeplab_keras as dk


def build_model():
    """A small DeepLab v3+: MobileNetV2 at 0.35 width, narrow ASPP and decoder."""
    return dk.models.DeepLabV3Plus(
        backbone="mobilenetv2", num_classes=layout.num_classes,
        backbone_kwargs=dict(alpha=0.35), aspp_filters=64, decoder_filters=64,
        class_names=layout.class_names, palette=layout.palette)


keras.mixed_precision.set_global_policy("mixed_bfloat16")
mixed_model = build_model()
keras.mixed_precision.set_global_policy("float32")
float_model = build_model()
float_model.set_weights(mixed_model.get_weights())  # variables are float32 in both

policy = mixed_model.dtype_policy
print(f"{policy.name}: layers compute in {policy.compute_dtype}, variables are "
      f"{policy.variable_dtype} ({mixed_model.weights[0].dtype}); the 'logits' layer computes "
      f"in {mixed_model.get_layer('logits').compute_dtype}")
batch = images[:2]
reference = keras.ops.convert_to_numpy(float_model(batch, training=False))
mixed = mixed_model(batch, training=False)
print(f"output: {mixed.dtype}, shape {tuple(mixed.shape)}")
mixed = keras.ops.convert_to_numpy(mixed)
agree = np.mean(reference.argmax(-1) == mixed.argmax(-1))
print(f"largest logit difference to float32: {np.abs(reference - mixed).max():.3f} "
      f"(logits span {reference.min():.1f}..{reference.max():.1f}); same class at "
      f"{100 * agree:.1f}% of the pixels")

# %% [markdown]
# Now the policy for training. On a CPU there is nothing to gain reliably (few CPUs have
# 16-bit matrix units; without them the 16-bit math is emulated and slower), so this notebook
# trains in float32 there. The trainer and its checkpoints work the same under every policy
# (a `LossScaleOptimizer`'s loss scale is saved and restored with the rest of the optimizer).
# One trap: `keras.backend.clear_session()` resets the global policy to float32, so set it
# again after clearing, or a resumed `mixed_float16` run no longer matches its checkpoints.

# %%
POLICY = {"gpu": "mixed_float16", "tpu": "mixed_bfloat16"}.get(HARDWARE)
if POLICY is not None:
    keras.mixed_precision.set_global_policy(POLICY)
    print(f"{HARDWARE.upper()} found: models built from now on use {POLICY}.")
else:
    print("Skipped: no GPU or TPU, so training stays float32 here (on a GPU runtime this cell "
          "sets mixed_float16, on a TPU runtime mixed_bfloat16).")

# %% [markdown]
# ## 4. Resumable training with checkpoints
#
# `deeplab_keras.train.trainer.fit` is what `deeplab-keras train` runs. It takes:
#
# - `model_fn`: builds and compiles the model. The trainer calls it after seeding and inside
#   `strategy.scope()`, so the variables are mirrored on every replica;
# - `dataset_fn(start_step, num_steps)`: the batches `start_step ...` of the run, the same
#   ones every time (`data.make_tf_dataset(..., start_step=, num_steps=)`);
# - `total_steps`, `steps_per_checkpoint` and `checkpoint_dir`.
#
# Every `steps_per_checkpoint` steps it writes a checkpoint: weights, the optimizer's
# variables (momentum, step counter, loss scale) and random-generator state, each file
# written to a temporary name and renamed, with its sha256 in a JSON record written last; a
# process killed mid-save leaves the previous checkpoint as the newest complete one. Called
# again with the same `checkpoint_dir`, `fit` restores the newest complete checkpoint and
# continues from its step.
#
# With more than one replica the trainer also switches batch norm to **synchronized**
# statistics (`distribute.enable_sync_batch_norm`): each replica sees only its slice of the
# batch, and without it every replica would normalise with its slice's mean and variance.
# It switches back after training, so the model still saves to a `.keras` file that loads
# on JAX.

# %%
from deeplab_keras import train
from deeplab_keras.train import checkpoint
from deeplab_keras.train import tensorboard
from deeplab_keras.train import trainer

RUN_DIR = os.path.join(WORK, "run")
CKPT_DIR = os.path.join(RUN_DIR, "checkpoints")
LOG_DIR = os.path.join(RUN_DIR, "logs")


def make_schedule():
    """DeepLab's poly learning rate, after a short linear warm-up."""
    return train.PolyDecay(0.05, total_steps=STEPS, warmup_steps=STEPS // 6)


def model_fn():
    model = build_model()
    model.compile(
        optimizer=train.make_optimizer("sgd", make_schedule(), momentum=0.9, weight_decay=1e-4),
        loss=train.SegmentationCrossEntropy(ignore_label=layout.ignore_label,
                                            num_classes=layout.num_classes),
        metrics=[train.MeanIoU(layout.num_classes, ignore_label=layout.ignore_label)])
    return model


def dataset_fn(start_step, num_steps):
    print(f"dataset_fn(start_step={start_step}, num_steps={num_steps})")
    return data.make_tf_dataset(train_examples, layout, batch_size=GLOBAL_BATCH, crop_size=CROP,
                                seed=0, start_step=start_step, num_steps=num_steps,
                                scale_range=SCALE_RANGE)


# What the trainer does to batch norm when there are several replicas:
norms = distribute.batch_norm_layers(float_model)
switched = distribute.enable_sync_batch_norm(float_model)
print(f"{switched} of {len(norms)} batch-norm layers switched to synchronized statistics; "
      f"back: {distribute.enable_sync_batch_norm(float_model, False)}")
del mixed_model, float_model

# %% [markdown]
# ### 4a. Train until the runtime "resets"
#
# A Keras callback stands in for Colab taking the runtime away: it raises an exception after
# step `RESET_AFTER`, a few steps after the last checkpoint, so those steps are lost, as they
# would be. The TensorBoard callbacks of the package (`tensorboard.callbacks`, what the
# command line uses) write the loss, mIoU and learning rate at every checkpoint, and the
# validation mIoU every `EVAL_EVERY` checkpoints.
#
# `deterministic=True` (the default) makes TensorFlow's ops deterministic, so a resumed run
# ends bit for bit where an uninterrupted one would (the package's tests check this on CPU).
# Some GPU kernels have no deterministic version, so we turn it off on accelerators: the run
# still resumes at the same step with the same batches, only not bit for bit.

# %%
class RuntimeReset(Exception):
    """Stands in for the runtime going away."""


class PullThePlug(keras.callbacks.Callback):
    def __init__(self, after_step):
        super().__init__()
        self.after_step = after_step

    def on_train_batch_end(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step >= self.after_step:
            raise RuntimeReset(f"the runtime went away after step {step}")


FIT_ARGS = dict(total_steps=STEPS, steps_per_checkpoint=CKPT_EVERY, checkpoint_dir=CKPT_DIR,
                seed=0, strategy=strategy, deterministic=HARDWARE == "cpu", verbose=2)
try:
    trainer.fit(model_fn, dataset_fn, **FIT_ARGS, callbacks=[
        *tensorboard.callbacks(LOG_DIR, val_examples, layout, layout.num_classes,
                               every_n_epochs=EVAL_EVERY),
        PullThePlug(RESET_AFTER)])
except RuntimeReset as error:
    print(f"\n*** {error} ***")
print("complete checkpoints on disk: steps", checkpoint.list_checkpoints(CKPT_DIR),
      "(the trainer keeps the newest 3: max_to_keep=3)")

# %% [markdown]
# ### 4b. Resume with a fresh model
#
# After a reset nothing of the old Python process is left: no model, no optimizer, no
# compiled training step. So we do what a new process does: call `fit` again with the same
# arguments. `model_fn` builds a fresh model (freshly initialised weights), the trainer finds
# the newest complete checkpoint, restores weights, optimizer and random state into it, and asks
# `dataset_fn` for the batches from that step on. Only the steps after the last checkpoint are
# trained again.

# %%
run = trainer.fit(model_fn, dataset_fn, **FIT_ARGS, callbacks=tensorboard.callbacks(
    LOG_DIR, val_examples, layout, layout.num_classes, every_n_epochs=EVAL_EVERY))
resumed_at = run.start_step
record = checkpoint.read_record(run.last_checkpoint)
print(f"\nresumed at step {resumed_at} from {os.path.basename(run.restored_from)}; trained to "
      f"step {run.end_step}; optimizer step counter now "
      f"{int(keras.ops.convert_to_numpy(run.model.optimizer.iterations))}")
print(f"newest checkpoint: step {record['step']}, backend {record['backend']}, metadata "
      f"{record['metadata']}")
print("files:", sorted(os.listdir(CKPT_DIR)))

# %% [markdown]
# ### 4c. A real runtime reset (Colab)
#
# To try it for real on Colab, set `REALLY_RESET = True` below: the cell kills this Python
# process, Colab starts a new one, and *Runtime > Run all* comes back to part 4 and resumes
# from the newest checkpoint in `/content/train_at_scale` (the last cell of this notebook
# deletes that folder; delete it yourself to start from step 0). A restart keeps the files of
# the runtime's disk; when Colab *recycles* the runtime (idle timeout, usage limits) the disk
# goes too, so for long runs put `checkpoint_dir` on Google Drive (`from google.colab import
# drive; drive.mount("/content/drive")`, then a folder under `/content/drive/MyDrive`).

# %%
REALLY_RESET = False  # True: kill this runtime's Python process (Colab only)
if IN_COLAB and REALLY_RESET:
    print("Killing the kernel; run all cells again and part 4 resumes from", CKPT_DIR)
    os.kill(os.getpid(), 9)
else:
    print("Skipped: a real reset kills this Python process (os.kill(os.getpid(), 9)); only "
          "on Colab with REALLY_RESET = True, since here nothing would restart the kernel.")

# %% [markdown]
# ## 5. TensorBoard
#
# The logs are in `LOG_DIR`: `train/` (loss, mIoU and learning rate at every checkpoint,
# against the global step, so the resumed part continues the same curves) and `validation/`
# (mIoU and per-class IoU, plus image | truth | prediction panels). On Colab the next cell
# opens TensorBoard inside the notebook.

# %%
if IN_COLAB:
    get_ipython().run_line_magic("load_ext", "tensorboard")
    get_ipython().run_line_magic("tensorboard", f"--logdir {LOG_DIR}")
else:
    print("Skipped: not on Colab, so no inline TensorBoard (%load_ext tensorboard, then "
          f"%tensorboard --logdir {LOG_DIR}, starts a server); the next cell plots its data.")

# %% [markdown]
# The same numbers, read from the event files with `tensorboard.read_scalars` and drawn with
# matplotlib. The red line marks the simulated reset; the steps between the last checkpoint
# before it and the reset were trained twice, and only the second time counts.

# %%
scalars = tensorboard.read_scalars(LOG_DIR)
print("tags:", ", ".join(tag for tag in sorted(scalars) if "/val_iou/" not in tag))


def draw(ax, tag, label, style="o-"):
    if tag in scalars:
        steps, values = zip(*scalars[tag])
        ax.plot(steps, values, style, label=label)


fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
draw(axes[0], "train/loss", "training loss")
draw(axes[1], "train/mean_iou", "training mIoU (each interval)")
draw(axes[1], "validation/val_miou", "validation mIoU", "s--")
every_step = np.arange(STEPS + 1)
axes[2].plot(every_step, keras.ops.convert_to_numpy(make_schedule()(every_step)), "-",
             color="lightgray", label="schedule (every step)")
draw(axes[2], "train/learning_rate", "logged")
for ax, title in zip(axes, ["loss", "mean IoU", "learning rate"]):
    ax.axvspan(resumed_at, RESET_AFTER, color="red", alpha=0.12, label="trained twice")
    ax.axvline(RESET_AFTER, color="red", linestyle="--", label="simulated reset")
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 6. JAX: `data_parallel` instead of `tf.distribute`
#
# On the JAX backend the strategy is `get_strategy("data_parallel")`, a thin wrapper around
# `keras.distribution.DataParallel`: the training step is one XLA program over the batch
# sharded across the devices, so batch-norm statistics are always those of the global batch
# (nothing to synchronize). The trainer, the checkpoints and the data stream are the same
# code; the input is `data.SegmentationPyDataset` instead of `tf.data`.
#
# The Keras backend is fixed when Keras is first imported, and this kernel runs TensorFlow,
# so JAX runs in its own process: `deeplab-keras train --backend jax --strategy
# data_parallel`, continuing from the model we just trained (saved as `.keras`, which loads on
# either backend; we save a float32 copy, since a mixed-precision model carries its policy
# into the file and the JAX run here is on the CPU).
# `XLA_FLAGS=--xla_force_host_platform_device_count=2` splits the CPU into 2 JAX devices, as
# the logical CPUs did for TensorFlow; we keep JAX on the CPU (`JAX_PLATFORMS=cpu`) because
# this kernel's TensorFlow already holds the GPU or TPU. For a
# JAX run on an accelerator, start a fresh runtime with `KERAS_BACKEND=jax` and use the same
# command without those two variables.

# %%
import re
import subprocess

tf_model = os.path.join(WORK, "trained_with_tf.keras")
keras.mixed_precision.set_global_policy("float32")
export = build_model()  # float32 layers; the variables are float32 under every policy
export.set_weights(run.model.get_weights())
export.save(tf_model)
keras.mixed_precision.set_global_policy(POLICY or "float32")
jax_dir = os.path.join(WORK, "jax_run")
env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
           JAX_PLATFORMS="cpu", KERAS_BACKEND="jax")
devices = subprocess.run([sys.executable, "-c", "import jax; print(jax.devices())"], env=env,
                         capture_output=True, text=True, timeout=300)
print("JAX devices in the child process:", devices.stdout.strip() or devices.stderr[-2000:])
command = [
    sys.executable, "-m", "deeplab_keras.cli", "train", "--backend", "jax",
    "--strategy", "data_parallel", "--model", tf_model,
    "--dataset", "folder", "--data_dir", DATA_DIR, "--num_classes", str(layout.num_classes),
    "--ignore_label", str(layout.ignore_label), "--class_names", ",".join(layout.class_names),
    "--crop_size", f"{CROP[0]},{CROP[1]}", "--scale_range", "{},{}".format(*SCALE_RANGE),
    "--batch_size", str(2 * BATCH_PER_REPLICA), "--steps", str(JAX_STEPS),
    "--checkpoint_every", str(max(1, JAX_STEPS // 2)), "--learning_rate", "0.01",
    "--eval_every", "0", "--output_dir", jax_dir]
print("$", " ".join(command[1:]), "\n")
result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
# Keras redraws its progress bar in place; keep the last state of each line, without colours.
text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
lines = [line.split("\r")[-1] for line in text.splitlines()]
lines = [re.sub(r".*(\d+/\d+ \S+ .*)$", r"\1", line) for line in lines if line.strip()]
print("\n".join(lines[-12:]))
if result.returncode != 0:
    print(result.stderr[-3000:])
    raise RuntimeError(f"the JAX run failed (exit code {result.returncode})")

jax_record = checkpoint.read_record(checkpoint.latest_checkpoint(
    os.path.join(jax_dir, "checkpoints")))
history = tensorboard.read_history_csv(os.path.join(jax_dir, "logs", "history.csv"))
print(f"\nJAX checkpoint: step {jax_record['step']}, backend {jax_record['backend']}; loss per "
      "checkpoint:", ", ".join(f"{loss:.3f}" for loss in history["loss"]))

# %% [markdown]
# ## Clean up
#
# Everything this notebook wrote is under `WORK`; keep it if you want to look at the
# checkpoints, the logs or the `.keras` files.

# %%
shutil.rmtree(WORK, ignore_errors=True)
print("deleted", WORK)

# %% [markdown]
# ## What to take away
#
# - Choose the strategy from the hardware: `distribute.get_strategy("tpu" | "mirrored")` on
#   TensorFlow, `"data_parallel"` on JAX; batch sizes are global.
# - Set the mixed-precision policy before building the model: `mixed_float16` on GPUs,
#   `mixed_bfloat16` on TPUs; the logits stay float32.
# - Train with `trainer.fit(model_fn, dataset_fn, total_steps, steps_per_checkpoint,
#   checkpoint_dir)` and run the same call again after any interruption; on Colab keep
#   `checkpoint_dir` on Google Drive.
# - The command line does all of this:
#   `deeplab-keras train --strategy mirrored --mixed_precision mixed_float16 --checkpoint_every
#   500 --output_dir /content/drive/MyDrive/runs/mine ...` (TensorBoard logs in
#   `<output_dir>/logs`).
