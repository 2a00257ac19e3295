"""The README's main job: segment the bundled example images and save pictures.

Usage:

    python -m deeplab_keras.demo [--output_dir outputs/demo] [--model deeplabv3plus_resnet50]

No trained model ships yet (a later release bundles one trained on CamVid),
so the network has RANDOM weights: the masks show the pipeline working end to
end (load, normalise inside the model, predict at input resolution, colour,
overlay), not a meaningful segmentation. The script says so when it runs.
"""

import glob
import os
import sys
import time

from absl import app
from absl import flags

_OUTPUT_DIR = flags.DEFINE_string("output_dir", "outputs/demo", "Where to write the PNGs.")
_MODEL = flags.DEFINE_enum(
    "model", "deeplabv3plus_resnet50",
    ["deeplabv3plus_resnet50", "deeplabv3_resnet101", "deeplabv2_resnet101", "deeplabv1_vgg16"],
    "Architecture to build (random weights).")
_IMAGES = flags.DEFINE_string("images", None,
                              "Glob of images to segment; default: the bundled examples.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random weights.")

EXAMPLES_DIR = os.path.join(os.path.dirname(__file__), "assets", "examples")
NUM_CLASSES = 11  # CamVid's classes, so the colours match the model that will ship


def example_images():
    """Paths of the bundled example images (three CamVid val frames, research use)."""
    return sorted(glob.glob(os.path.join(EXAMPLES_DIR, "*.jpg")))


def build_model(name):
    from deeplab_keras import models

    if name == "deeplabv3plus_resnet50":
        return models.DeepLabV3Plus(backbone="resnet50_v1_5", output_stride=16,
                                    num_classes=NUM_CLASSES)
    if name == "deeplabv3_resnet101":
        return models.DeepLabV3(backbone="resnet101_v1_5", output_stride=16,
                                num_classes=NUM_CLASSES)
    if name == "deeplabv2_resnet101":
        return models.DeepLabV2(backbone="resnet101", aspp="L", num_classes=NUM_CLASSES)
    return models.DeepLabV1(num_classes=NUM_CLASSES)


def load_rgb(path):
    import numpy as np
    from PIL import Image
    from PIL import ImageOps

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as err:
        raise ValueError(f"Cannot read image {path!r}: {err}. Is it a valid image file?") from err


def segment_and_save(model, paths, output_dir):
    """Segments each image and writes `<stem>_mask.png`, `_overlay.png`, `_panel.png`."""
    import numpy as np
    from PIL import Image

    from deeplab_keras import visualize

    os.makedirs(output_dir, exist_ok=True)
    written = []
    for path in paths:
        image = load_rgb(path)
        start = time.perf_counter()
        logits = model.predict(image[None].astype("float32"), verbose=0)[0]
        seconds = time.perf_counter() - start
        labels = np.argmax(logits, axis=-1)
        mask = visualize.colorize(labels, visualize.CAMVID_PALETTE)
        blend = visualize.overlay(image, mask)
        stem = os.path.splitext(os.path.basename(path))[0]
        for suffix, picture in (("mask", mask), ("overlay", blend),
                                ("panel", visualize.panel([image, mask, blend]))):
            out = os.path.join(output_dir, f"{stem}_{suffix}.png")
            Image.fromarray(picture).save(out)
            written.append(out)
        print(f"  {os.path.basename(path)}: {image.shape[1]}x{image.shape[0]}, "
              f"{len(np.unique(labels))} classes predicted, {seconds:.2f} s")
    return written


def main(argv):
    del argv
    import keras

    paths = sorted(glob.glob(_IMAGES.value)) if _IMAGES.value else example_images()
    if not paths:
        print(f"No images matched {_IMAGES.value or EXAMPLES_DIR!r}.", file=sys.stderr)
        return 1
    print("NOTE: no trained deeplab-keras model is bundled yet; this demo builds "
          f"{_MODEL.value} with RANDOM weights, so the masks are not a real segmentation.")
    keras.utils.set_random_seed(_SEED.value)
    model = build_model(_MODEL.value)
    print(f"Built {_MODEL.value}: {model.count_params():,} parameters, backend "
          f"{keras.backend.backend()}. Segmenting {len(paths)} image(s):")
    written = segment_and_save(model, paths, _OUTPUT_DIR.value)
    print(f"Wrote {len(written)} PNGs (mask, overlay, image|mask|overlay panel) to "
          f"{os.path.abspath(_OUTPUT_DIR.value)}")
    return 0


def run():
    app.run(main)


if __name__ == "__main__":
    run()
