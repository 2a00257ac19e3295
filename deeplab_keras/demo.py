"""The README's main job: segment the bundled example images with the bundled CamVid model.

Usage:

    python -m deeplab_keras.demo [--output_dir outputs/demo] [--images "photos/*.jpg"]
                                 [--model deeplabv3plus_resnet50w40_camvid] [--nocrf]

Loads `deeplabv3plus_resnet50w40_camvid` (trained from scratch by this project on CamVid on
one GPU, shipped inside the package: no network), segments each image without and with the
dense CRF (its parameters were tuned on CamVid val) and writes, per image:

- `<stem>_mask.png`, `<stem>_overlay.png`, `<stem>_panel.png`: without the CRF;
- `<stem>_crf_mask.png`, `<stem>_crf_overlay.png`, `<stem>_crf_panel.png`: with it;
- `<stem>_compare.png`: image | overlay | overlay with CRF, with a colour legend.

The model was trained on CamVid's street scenes (Cambridge, 360x480 video frames): it
segments similar street scenes; other photos get street classes.
"""

import glob
import os
import sys
import time

from absl import app
from absl import flags

_OUTPUT_DIR = flags.DEFINE_string("output_dir", "outputs/demo", "Where to write the PNGs.")
_MODEL = flags.DEFINE_string("model", "deeplabv3plus_resnet50w40_camvid",
                             "Registry name (see deeplab_keras.list_models()) or a .keras file.")
_IMAGES = flags.DEFINE_string("images", None,
                              "Glob of images to segment; default: the bundled examples.")
_CRF = flags.DEFINE_bool("crf", True, "Also write the CRF-refined masks.")

def load(name):
    import deeplab_keras

    return deeplab_keras.load_model(name)


def compare_picture(image, plain, refined, names, palette):
    """image | overlay | overlay with CRF, titled, over a legend of the classes present."""
    import numpy as np

    from deeplab_keras import visualize

    tiles = [visualize.titled(image, "image"), visualize.titled(plain.overlay, "DeepLab")]
    present = set(np.unique(plain.labels).tolist())
    if refined is not None:
        tiles.append(visualize.titled(refined.overlay, "DeepLab + dense CRF"))
        present |= set(np.unique(refined.labels).tolist())
    top = visualize.panel(tiles)
    return visualize.stack([top, visualize.legend(names, palette, top.shape[1], present)])


def main(argv):
    del argv
    import keras

    from deeplab_keras import assets
    from deeplab_keras import inference
    from deeplab_keras import visualize

    paths = sorted(glob.glob(_IMAGES.value)) if _IMAGES.value else assets.example_images()
    if not paths:
        print(f"No images matched {_IMAGES.value or assets.EXAMPLES_DIR!r}.", file=sys.stderr)
        return 1
    model = load(_MODEL.value)
    record = getattr(model, "weight_record", None)
    crf = None
    if _CRF.value:
        crf = inference.resolve_crf(True, record)
    crf_text = f"dense CRF {crf.params.describe()}" if crf else "no CRF"
    print(f"Loaded {_MODEL.value}: {model.count_params():,} parameters, backend "
          f"{keras.backend.backend()}; {crf_text}. Segmenting {len(paths)} image(s):")
    names = inference.class_names_of(model)
    output_dir = _OUTPUT_DIR.value
    written = []
    for path in paths:
        image = inference.load_rgb(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        start = time.perf_counter()
        plain = inference.segment(model, image)
        plain_seconds = time.perf_counter() - start
        written += visualize.save_segmentation(plain, image, output_dir, stem)
        refined, line = None, ""
        if crf is not None:
            start = time.perf_counter()
            refined = inference.segment(model, image, crf=crf)
            line = (f"; with CRF {time.perf_counter() - start:.2f} s, "
                    f"{100 * (refined.labels != plain.labels).mean():.1f}% of pixels changed")
            written += visualize.save_segmentation(refined, image, output_dir, stem, "crf")
        written.append(visualize.save_png(
            compare_picture(image, plain, refined, names, inference.palette_of(model)),
            os.path.join(output_dir, f"{stem}_compare.png")))
        top = ", ".join(f"{k} {100 * v:.0f}%" for k, v in
                        list(plain.class_fractions(names).items())[:3])
        print(f"  {os.path.basename(path)}: {image.shape[1]}x{image.shape[0]}, {top} "
              f"({plain_seconds:.2f} s{line})")
    print(f"Wrote {len(written)} PNGs to {os.path.abspath(output_dir)} "
          "(*_compare.png: image | DeepLab | DeepLab + CRF)")
    return 0


def run():
    app.run(main)


if __name__ == "__main__":
    run()
