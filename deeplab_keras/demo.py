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

    if name.startswith("deeplabv3"):
        return models.build(name, NUM_CLASSES, output_stride=16)
    return models.build(name, NUM_CLASSES)


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
    from deeplab_keras.inference import segment_and_save

    written = segment_and_save(model, paths, _OUTPUT_DIR.value)
    print(f"Wrote {len(written)} PNGs (mask, overlay, image|mask|overlay panel) to "
          f"{os.path.abspath(_OUTPUT_DIR.value)}")
    return 0


def run():
    app.run(main)


if __name__ == "__main__":
    run()
