# %% [markdown]
# # Fine-tune DeepLab on your own images and masks
#
# What this notebook teaches:
# - the folder layout deeplab-keras reads (images + single-channel PNG masks), with your own
#   classes (here 4: sky, building, road, car; everything else ignored);
# - checking every mask before training (`data.scan_examples`);
# - fine-tuning the bundled CamVid model with a new 4-class head using `model.fit`, the
#   project's loss, mIoU metric and poly learning-rate schedule;
# - training curves, a per-class IoU table, the confusion matrix and predictions with a legend;
# - saving to `.keras` (class names and colours included), reloading, and the same job with
#   the `deeplab-keras` command line in one cell.
#
# Runtime: any (CPU is enough; a GPU makes it faster). Time needed: about 3 minutes on a
# 2-core CPU.

# %%
SIDE = 480 if FULL else 96  # width the images are resized to
CROP = (256, 256) if FULL else (48, 64)  # training crop (height, width)
EPOCHS, STEPS_PER_EPOCH = (6, 10) if FULL else (2, 1)
BATCH = 4 if FULL else 2

# %% [markdown]
# ## A small dataset in the documented layout
#
# Any folder works if it looks like this (masks are PNGs with the image's name; pixel value =
# class id `0..N-1`, 255 = ignore):
#
# ```
# my_data/
#   images/train/*.jpg   images/val/*.jpg
#   masks/train/*.png    masks/val/*.png
# ```
#
# Here it is made from the three CamVid street scenes (with their labels) shipped in the
# package: two for training (plus their mirror images), one for validation. CamVid's 11 classes
# are mapped to our 4; the other classes become 255 (ignored). With your data, skip this cell.

# %%
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import data
from deeplab_keras import train
from deeplab_keras import visualize

CLASS_NAMES = ("sky", "building", "road", "car")
CAMVID_TO_OURS = {0: 0, 1: 1, 3: 2, 8: 3}  # CamVid ids: 0 Sky, 1 Building, 3 Road, 8 Car
ROOT = os.path.join(tempfile.gettempdir(), "deeplab_keras_notebook_02")
DATA = os.path.join(ROOT, "my_data")
shutil.rmtree(ROOT, ignore_errors=True)


def resized(image, resample):
    return image.resize((SIDE, round(SIDE * image.height / image.width)), resample)


pairs = list(zip(dk.assets.example_images(), dk.assets.example_labels()))
for index, (image_path, label_path) in enumerate(pairs):
    split = "val" if index == len(pairs) - 1 else "train"
    image = resized(Image.open(image_path).convert("RGB"), Image.BILINEAR)
    label = np.asarray(resized(Image.open(label_path), Image.NEAREST))
    mask = np.full(label.shape, 255, np.uint8)
    for camvid_id, our_id in CAMVID_TO_OURS.items():
        mask[label == camvid_id] = our_id
    versions = [("", image, mask)]
    if split == "train":
        versions.append(("_mirror", image.transpose(Image.FLIP_LEFT_RIGHT), mask[:, ::-1]))
    for suffix, picture, target in versions:
        stem = f"{index:04d}{suffix}"
        for folder in ("images", "masks"):
            os.makedirs(os.path.join(DATA, folder, split), exist_ok=True)
        picture.save(os.path.join(DATA, "images", split, stem + ".jpg"), quality=95)
        Image.fromarray(np.ascontiguousarray(target)).save(
            os.path.join(DATA, "masks", split, stem + ".png"))

for folder, _, files in sorted(os.walk(DATA)):
    if files:
        print(os.path.relpath(folder, ROOT), sorted(files))

# %% [markdown]
# ## Read and check it
#
# `data.folder_layout` describes the dataset (class names, ignore label, colours);
# `data.scan_examples` reads every mask and image header first, so a bad value or a size
# mismatch stops here with the file's name instead of in the middle of training.

# %%
layout = data.folder_layout(len(CLASS_NAMES), class_names=CLASS_NAMES)
train_set = data.list_examples(layout, DATA, "train")
val_set = data.list_examples(layout, DATA, "val")
data.scan_examples(train_set, layout)
data.scan_examples(val_set, layout)
print(len(train_set), "training and", len(val_set), "validation pairs;", layout.class_names)

# %% [markdown]
# ## The model: the bundled CamVid DeepLabV3+ with a new 4-class head
#
# We start from the smaller bundled CamVid model, `deeplabv3plus_mobilenetv2_camvid` (5.8M
# parameters, trained on a CPU), so that fine-tuning stays quick on a CPU runtime; the main
# bundled model, `deeplabv3plus_resnet50w40_camvid` (19M), fine-tunes the same way and is the
# better start on a GPU runtime. `num_classes=4` keeps every pretrained weight except the
# classifier, which starts afresh.
# The class names and colours become part of the model (and of its `.keras` file).

# %%
model = dk.load_model("deeplabv3plus_mobilenetv2_camvid", num_classes=len(CLASS_NAMES),
                      class_names=CLASS_NAMES, palette=layout.palette)
print(model.class_names, model.palette.tolist())

# %% [markdown]
# ## Train with `model.fit`
#
# The project's pieces: `SegmentationCrossEntropy` (skips the ignore label), the streaming
# `MeanIoU` metric and DeepLab's poly learning-rate decay. `SegmentationPyDataset` crops,
# rescales and flips at random; it yields exactly the number of steps asked for.

# %%
import keras

total_steps = EPOCHS * STEPS_PER_EPOCH
model.compile(
    optimizer=keras.optimizers.AdamW(train.PolyDecay(1e-3, total_steps), weight_decay=1e-4),
    loss=train.SegmentationCrossEntropy(ignore_label=255),
    metrics=[train.MeanIoU(len(CLASS_NAMES), ignore_label=255)])
batches = data.SegmentationPyDataset(train_set, layout, batch_size=BATCH, crop_size=CROP,
                                     num_steps=total_steps, scale_range=(0.75, 1.25))
history = model.fit(batches, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH)

# %%
import matplotlib.pyplot as plt

figure, axes = plt.subplots(1, 2, figsize=(9, 3))
epochs = range(1, EPOCHS + 1)
axes[0].plot(epochs, history.history["loss"], marker="o")
axes[0].set(title="training loss", xlabel="epoch")
miou_key = next(k for k in history.history if "iou" in k)
axes[1].plot(epochs, [100 * v for v in history.history[miou_key]], marker="o", color="C1")
axes[1].set(title="training mIoU (%)", xlabel="epoch")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Evaluate on the validation image: per-class IoU and the confusion matrix

# %%
from deeplab_keras import evaluation

scores = evaluation.evaluate(model, data.iterate_eval(val_set, layout), len(CLASS_NAMES),
                             class_names=CLASS_NAMES, progress=False)
print(scores["table"])

confusion = scores["confusion"].astype(float)
share = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
plt.figure(figsize=(4.5, 4))
plt.imshow(share, cmap="Blues", vmin=0, vmax=1)
plt.xticks(range(len(CLASS_NAMES)), CLASS_NAMES, rotation=45)
plt.yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
for (row, col), value in np.ndenumerate(share):
    plt.text(col, row, f"{100 * value:.0f}", ha="center", va="center",
             color="white" if value > 0.5 else "black")
plt.xlabel("predicted")
plt.ylabel("true")
plt.title("confusion (% of each true class)")
plt.colorbar()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Predictions with a legend

# %%
palette = dk.inference.palette_of(model)
for image_path, _ in val_set:
    image = np.asarray(Image.open(image_path).convert("RGB"))
    result = dk.segment(model, image)
    visualize.show(visualize.segmentation_panel(result, image, model.class_names,
                                                 palette))
    print({name: round(fraction, 3) for name, fraction in
           result.class_fractions(model.class_names).items()})

# %% [markdown]
# ## Save, reload, predict again
#
# The `.keras` file holds the weights, the architecture and the class names and colours: copy
# it anywhere (a JAX machine included) and `dk.load_model(path)` gives the same model.

# %%
saved = os.path.join(ROOT, "my_model.keras")
model.save(saved)
reloaded = dk.load_model(saved)
again = dk.segment(reloaded, image)
print(f"{os.path.getsize(saved) / 1e6:.1f} MB (weights and the optimizer's state, so "
      f"training can continue); names {reloaded.class_names}; "
      f"same labels as before saving: {np.array_equal(again.labels, result.labels)}")

# %% [markdown]
# ## The same job from the command line
#
# `deeplab-keras train` does all of the above in one command: it checks every pair, trains
# with resumable checkpoints, writes `model.keras` with the class names, and scores the val
# split at the end with the same per-class table (`deeplab-keras evaluate --model
# .../model.keras` prints it again later). Same recipe and step count as above, so the scores
# land near the notebook's (the random crops differ). On Colab you would write
# `!deeplab-keras train ...`; here the module form runs with this notebook's Python.

# %%
import subprocess
import sys

run_dir = os.path.join(ROOT, "cli_run")
command = ["train", "--dataset", "folder", "--data_dir", DATA,
           "--class_names", ",".join(CLASS_NAMES), "--model", "deeplabv3plus_mobilenetv2_camvid",
           "--crop_size", f"{CROP[0]},{CROP[1]}", "--scale_range", "0.75,1.25",
           "--batch_size", str(BATCH), "--steps", str(total_steps), "--optimizer", "adamw",
           "--learning_rate", "1e-3", "--weight_decay", "1e-4", "--eval_every", "1",
           "--output_dir", run_dir]
print("$ deeplab-keras", " ".join(command))
done = subprocess.run([sys.executable, "-m", "deeplab_keras.cli", *command],
                      capture_output=True, text=True)
print("\n".join(line for line in done.stdout.splitlines()[-14:] if "━" not in line))
if done.returncode != 0:
    raise RuntimeError(done.stderr[-2000:])
