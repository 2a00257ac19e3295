# %% [markdown]
# # Segment your photos with deeplab-keras
#
# What this notebook teaches:
# - the model zoo: `dk.list_models()` and what each weight record carries;
# - loading the CamVid model bundled inside the package (no download) and a registry model
#   (what the download does, where it is cached, how to work offline or from a mirror);
# - segmenting images (the bundled street scenes and a photo of yours): colour masks with a
#   legend, overlays and the fraction of the picture each class covers;
# - refining a segmentation with the fully connected (dense) CRF, and what its five
#   parameters mean.
#
# Runtime: any (CPU is enough). Time needed: about 1 minute on a 2-core CPU.

# %%
SIDE = 480 if FULL else 96  # width the images are resized to (the bundled ones are 480 wide)
CRF_ITERATIONS = 10 if FULL else 2  # mean-field iterations of the dense CRF

# %% [markdown]
# ## The zoo
#
# Every entry is a weight record: where the weights come from (a URL and its sha256, or a file
# inside the package), their preprocessing, class names, licence, paper and measured metrics.

# %%
import numpy as np
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import visualize

for name in dk.list_models():
    record = dk.get_record(name)
    where = "bundled" if record.bundled else "download"
    print(f"{name:38s} {record.num_classes:3d} classes  {where:8s} {record.summary[:60]}")

# %% [markdown]
# ## The bundled CamVid model
#
# `deeplabv3plus_resnet50w40_camvid` is a DeepLabV3+ (a 5/8-width ResNet-50 encoder, 19M
# parameters) trained from scratch on CamVid's 367 training street scenes at full resolution,
# in 3.3 minutes on one GPU with this project's own pipeline (72.3 val mIoU, see its model
# card). It ships inside the package, so it loads offline. Its `.class_names` and `.palette`
# travel with the model.

# %%
model = dk.load_model("deeplabv3plus_resnet50w40_camvid")
palette = dk.inference.palette_of(model)
print(model.count_params(), "parameters;", len(model.class_names), "classes:",
      ", ".join(model.class_names))

# %% [markdown]
# ## A registry model: what the download does
#
# `dk.load_model("deeplabv3_mobilenetv2_voc")` downloads TF research/deeplab's released
# checkpoint (a tarball), verifies its sha256, converts it to Keras weights once, and caches
# both under `~/.keras/deeplab_keras` (`$DEEPLAB_KERAS_CACHE` moves it). Offline:
# `DEEPLAB_KERAS_OFFLINE=1` never touches the network and uses only the cache. A mirror
# (a local folder or a `file://`/`https://` URL holding the same files):
# `DEEPLAB_KERAS_MIRROR=/path/to/mirror`. The cell below downloads only when the network is
# reachable.

# %%
import socket
from urllib.parse import urlparse

from deeplab_keras.weights import cache_folder

voc_record = dk.get_record("deeplabv3_mobilenetv2_voc")
host = urlparse(voc_record.urls[0]).hostname
try:
    socket.create_connection((host, 443), timeout=3).close()
    reachable = True
except OSError:
    reachable = False
if reachable:
    voc_model = dk.load_model("deeplabv3_mobilenetv2_voc")
    print("loaded", voc_model.name, "with", len(voc_model.class_names), "PASCAL VOC classes")
else:
    voc_model = None
    print(f"skipped here: {host} is not reachable from this machine; on Colab this cell "
          f"downloads {voc_record.urls[0]} into {cache_folder.cache_dir()}.")

# %% [markdown]
# ## Segment the bundled street scenes
#
# `dk.segment(model, image)` takes a path, a PIL image or an RGB array of any size; one image
# gives one result (a list gives a list) with `.labels`, `.color_mask`, `.overlay` and
# `.probabilities`. Each panel below is image | colour mask | overlay, over the legend.

# %%
def load(path):
    image = Image.open(path).convert("RGB")
    return np.asarray(image.resize((SIDE, round(SIDE * image.height / image.width))))


images = [load(path) for path in dk.assets.example_images()]
results = dk.segment(model, images)
for image, result in zip(images, results):
    visualize.show(visualize.segmentation_panel(result, image, model.class_names,
                                                 palette))

# %% [markdown]
# ## Your own photo
#
# On Colab the cell below opens an upload button; elsewhere it uses the first bundled image.
# The model was trained on Cambridge street scenes seen from a car: expect it to do best on
# similar pictures.

# %%
import importlib.util

if importlib.util.find_spec("google.colab") is not None:
    from google.colab import files

    uploaded = files.upload()
    photo = Image.open(next(iter(uploaded))).convert("RGB") if uploaded else None
else:
    photo = None
    print("skipped here: the upload widget needs Colab; using the first bundled image instead.")
photo = load(dk.assets.example_images()[0]) if photo is None else np.asarray(photo)
photo_result = dk.segment(model, photo)
visualize.show(visualize.segmentation_panel(photo_result, photo, model.class_names,
                                             palette))

# %% [markdown]
# ## How much of the picture is each class?

# %%
import matplotlib.pyplot as plt

fractions = photo_result.class_fractions(model.class_names)
names = list(fractions)[::-1]
colours = [palette[model.class_names.index(n)] / 255 for n in names]
plt.figure(figsize=(6, 3))
plt.barh(names, [100 * fractions[n] for n in names], color=colours, edgecolor="black")
plt.xlabel("% of pixels")
plt.title("classes in the photo")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The dense CRF: sharper boundaries
#
# DeepLab's network sees the image at 1/16 of its resolution, so its masks are blobby. The
# fully connected CRF (Krähenbühl & Koltun 2011, DeepLab v1/v2) treats every pixel as a node
# connected to every other pixel and runs a few mean-field iterations that pull pixels which
# look alike and sit close together towards the same label. Its five parameters:
#
# | parameter | symbol | what it does |
# |---|---|---|
# | `appearance_weight` | w1 | strength of the bilateral (colour + position) kernel |
# | `theta_alpha` | θα | spatial reach of the bilateral kernel, in pixels |
# | `theta_beta` | θβ | how similar two colours must be to count as alike (0..255 units) |
# | `smoothness_weight` | w2 | strength of the position-only kernel (removes small specks) |
# | `theta_gamma` | θγ | spatial reach of the smoothness kernel, in pixels |
#
# The bundled model's record carries parameters tuned on CamVid val; `crf=True` uses them.
# Below: the scores against the ground-truth labels shipped with the examples (void ignored).

# %%
from deeplab_keras.layers import DenseCRF

print("tuned parameters:", model.weight_record.crf)
crf = DenseCRF.from_params(model.weight_record.crf, iterations=CRF_ITERATIONS)
refined = dk.segment(model, images, crf=crf)


def pixel_accuracy(labels, truth):
    valid = truth != 11
    return 100 * float(np.mean(labels[valid] == truth[valid]))


for path, image, plain, better in zip(dk.assets.example_labels(), images, results, refined):
    truth = np.asarray(Image.open(path).resize(image.shape[1::-1], Image.NEAREST))
    print(f"pixel accuracy: {pixel_accuracy(plain.labels, truth):.1f}% without the CRF, "
          f"{pixel_accuracy(better.labels, truth):.1f}% with it")
    truth_colours = np.where(truth[..., None] == 11, 0, palette[np.minimum(truth, 10)])
    visualize.show(visualize.panel([
        visualize.titled(image, "image"),
        visualize.titled(plain.color_mask, "DeepLab"),
        visualize.titled(better.color_mask, "DeepLab + dense CRF"),
        visualize.titled(truth_colours.astype(np.uint8), "ground truth (void black)")]))
