"""Dense CRF speed: deeplab_keras.layers.DenseCRF vs pydensecrf, side by side.

A ~500x375 image (a CamVid val frame resized, or a synthetic one if ../shared is
absent), 21 labels, 10 mean-field iterations, with DeepLab's ResNet-101 parameters
and pydensecrf's README parameters. Each call is timed whole (lattice build
included) after one warm-up call, interleaved with pydensecrf; medians, the ratio
ours/pydensecrf and the label agreement are printed, then a JSON line.

Usage:

    python benchmarks/crf.py [--reps 5] [--backend tensorflow|jax] [--ours_only]

``--ours_only`` times only our CRF (pydensecrf still runs once, untimed, for the label
agreement) and prints min and median: for A/B timing two checkouts of this package, e.g.
``PYTHONPATH=../old python benchmarks/crf.py --ours_only --reps 15``, alternating.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

PRESET_NAMES = ("deeplab_resnet101_voc", "pydensecrf_readme")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--size", default="500x375")
    parser.add_argument("--ours_only", action="store_true",
                        help="Time only our CRF (A/B between two checkouts).")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import pydensecrf.densecrf as dcrf
    from PIL import Image
    from pydensecrf.utils import unary_from_softmax

    from deeplab_keras.crf.params import preset
    from deeplab_keras.layers import DenseCRF

    width, height = (int(v) for v in args.size.split("x"))
    camvid = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")
    rng = np.random.default_rng(0)
    if os.path.isdir(camvid):
        name = sorted(os.listdir(os.path.join(camvid, "val")))[10]
        image = np.array(Image.open(os.path.join(camvid, "val", name)).convert("RGB").resize(
            (width, height), Image.BILINEAR))
        labels = np.array(Image.open(os.path.join(camvid, "valannot", name)).resize(
            (width, height), Image.NEAREST)).astype(int)
        source = f"CamVid val {name} resized to {width}x{height}"
    else:
        yy, xx = np.mgrid[0:height, 0:width]
        labels = (xx * 4 // width + 4 * (yy * 4 // height)) % 21
        image = np.clip(rng.uniform(0, 255, (21, 3))[labels] + rng.normal(0, 10, (height, width,
                                                                              3)), 0, 255)
        image = image.astype(np.uint8)
        source = f"synthetic {width}x{height}"
    classes = 21
    logits = np.eye(classes)[np.minimum(labels, classes - 1)] * 2.0 + rng.normal(
        0, 1.2, (height, width, classes))
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).astype(np.float32)
    log_probs = np.log(probs)[None]
    image_f = image[None].astype(np.float32)
    results = {}
    for preset_name in PRESET_NAMES:
        w1, ta, tb, w2, tg = preset(preset_name)
        layer = DenseCRF.from_params(preset(preset_name), iterations=10)
        if args.backend == "tensorflow":
            import tensorflow as tf

            fn = tf.function(lambda a, b, layer=layer: layer([a, b]))
        else:
            import jax

            fn = jax.jit(lambda a, b, layer=layer: layer([a, b]))

        def ours():
            return np.asarray(fn(log_probs, image_f))[0].argmax(-1)

        def reference(w1=w1, ta=ta, tb=tb, w2=w2, tg=tg):
            crf = dcrf.DenseCRF2D(width, height, classes)
            crf.setUnaryEnergy(np.ascontiguousarray(
                unary_from_softmax(probs.transpose(2, 0, 1).copy())))
            crf.addPairwiseGaussian(sxy=tg, compat=w2)
            crf.addPairwiseBilateral(sxy=ta, srgb=tb, rgbim=np.ascontiguousarray(image),
                                     compat=w1)
            return np.array(crf.inference(10)).reshape(classes, height, width).argmax(0)

        ours_labels, ref_labels = ours(), reference()  # warm-up (tracing / compile)
        contenders = {"ours": ours} if args.ours_only else {"ours": ours, "pydensecrf": reference}
        times = {key: [] for key in contenders}
        for _ in range(args.reps):
            for key, fn_ in contenders.items():
                start = time.perf_counter()
                fn_()
                times[key].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        results[preset_name] = dict(
            median_s=med, min_s={k: min(v) for k, v in times.items()},
            agreement=float((ours_labels == ref_labels).mean()),
            changed_by_pydensecrf=float((ref_labels != probs.argmax(-1)).mean()), times_s=times)
        agreement = f"agreement {results[preset_name]['agreement']:.4f}"
        if args.ours_only:
            print(f"{preset_name}: ours median {med['ours']:.3f} s, "
                  f"min {min(times['ours']):.3f} s, "
                  + agreement)
            continue
        results[preset_name]["ratio"] = med["ours"] / med["pydensecrf"]
        print(f"{preset_name}: ours {med['ours']:.2f} s, pydensecrf {med['pydensecrf']:.2f} s, "
              f"ratio {results[preset_name]['ratio']:.2f}, " + agreement)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    print("RESULT_JSON " + json.dumps(dict(
        benchmark="dense_crf", command=" ".join(sys.argv), source=source, classes=classes,
        iterations=10, backend=keras.backend.backend(), cpu=cpu, cores=os.cpu_count(),
        versions=dict(python=platform.python_version(), keras=keras.__version__),
        results=results)))


if __name__ == "__main__":
    main()
