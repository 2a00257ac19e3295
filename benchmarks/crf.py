"""Dense CRF speed: deeplab_keras's CRF along the paths users take vs pydensecrf, side by side.

For each size (`--sizes`, width x height) and label count (`--labels`), the same unaries go to
pydensecrf and to each of our paths (`--paths`):

* `layer`: the bare `DenseCRF` layer inside `tf.function` (`jax.jit` on JAX);
* `segment`: `deeplab_keras.segment(net, image, crf=layer)`, the call the README shows;
* `crf_refined`: `deeplab_keras.segment(CRFRefined(net, layer), image)`, the CRF inside a model.

`net` is a stand-in segmentation network that costs ~1 ms: a 1x1 convolution scoring each
pixel's colour against C reference colours (`-|rgb - colour_c|^2 / (2 * 40^2)`; the colours are
pixels of a CamVid frame at fixed random positions), so the unaries follow the image's regions
the way a network's do. Every repetition takes a different CamVid val frame (resized; synthetic
images if ../shared is absent); each call is timed whole, after one untimed warm-up call per
contender, interleaved with pydensecrf (10 mean-field iterations, `--preset` parameters). Medians,
the ratio ours / pydensecrf and the label agreement with pydensecrf (over all timed images) are
printed, then a JSON line.

Usage:

    python benchmarks/crf.py                       # 480x360 and 500x375, 11 and 21 labels
    python benchmarks/crf.py --sizes 500x375 --labels 21 --paths layer --reps 15
    python benchmarks/crf.py --ours_only --paths layer   # A/B two checkouts (PYTHONPATH=...)
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

CAMVID = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                      "camvid")
PATHS = ("layer", "segment", "crf_refined")
COLOUR_SIGMA = 40.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=6, help="Timed calls per contender.")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--sizes", default="480x360,500x375", help="width x height, comma list.")
    parser.add_argument("--labels", default="11,21", help="Label counts, comma list.")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"Our contenders, comma list of {','.join(PATHS)}.")
    parser.add_argument("--preset", default="deeplab_resnet101_voc",
                        help="CRF parameters: a name from deeplab_keras.crf.params.PRESETS.")
    parser.add_argument("--ours_only", action="store_true",
                        help="Time only our CRF (pydensecrf runs once per image, untimed, for "
                             "the agreement): for A/B timing of two checkouts.")
    args = parser.parse_args(argv)
    args.sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    args.labels = [int(v) for v in args.labels.split(",")]
    args.paths = args.paths.split(",")
    unknown = sorted(set(args.paths) - set(PATHS))
    if unknown:
        parser.error(f"--paths: unknown {unknown}; choose from {list(PATHS)}")
    return args


def load_frames(width, height, count, np, Image):
    """`count` distinct RGB uint8 frames of the given size (CamVid val, or synthetic)."""
    folder = os.path.join(CAMVID, "val")
    if os.path.isdir(folder):
        names = sorted(os.listdir(folder))[::7][:count]
        return [np.array(Image.open(os.path.join(folder, n)).convert("RGB").resize(
            (width, height), Image.BILINEAR)) for n in names], "CamVid val frames"
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(count):
        yy, xx = np.mgrid[0:height, 0:width]
        blocks = (xx * 5 // width + 5 * (yy * 4 // height))
        colours = rng.uniform(0, 255, (20, 3))[blocks]
        frames.append(np.clip(colours + rng.normal(0, 12, colours.shape), 0, 255).astype(
            np.uint8))
    return frames, "synthetic block images"


def colour_net(keras, np, reference_frame, classes):
    """images -> [B, H, W, classes] logits: -|rgb - colour_c|^2 / (2 sigma^2) up to a per-pixel
    constant, as one 1x1 convolution."""
    rng = np.random.default_rng(classes)
    height, width = reference_frame.shape[:2]
    picks = rng.integers(0, height * width, classes)
    colours = reference_frame.reshape(-1, 3)[picks].astype(np.float32)
    images = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(classes, 1, name="colour_scores")
    net = keras.Model(images, conv(images))
    conv.set_weights([colours.T[None, None] / COLOUR_SIGMA**2,
                      -(colours**2).sum(-1) / (2 * COLOUR_SIGMA**2)])
    return net


def pydensecrf_labels(dcrf, unary_from_softmax, np, probs, image, params, iterations=10):
    w1, theta_alpha, theta_beta, w2, theta_gamma = params
    height, width, classes = probs.shape
    crf = dcrf.DenseCRF2D(width, height, classes)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs.transpose(2, 0, 1).copy())))
    crf.addPairwiseGaussian(sxy=theta_gamma, compat=w2)
    crf.addPairwiseBilateral(sxy=theta_alpha, srgb=theta_beta, rgbim=np.ascontiguousarray(image),
                             compat=w1)
    return np.array(crf.inference(iterations)).reshape(classes, height, width).argmax(0)


def main(argv=None):
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import pydensecrf.densecrf as dcrf
    from PIL import Image
    from pydensecrf.utils import unary_from_softmax

    import deeplab_keras as dk
    from deeplab_keras.crf.params import preset

    params = preset(args.preset)
    rows = []
    source = None
    for width, height in args.sizes:
        frames, source = load_frames(width, height, args.reps + 1, np, Image)
        for classes in args.labels:
            net = colour_net(keras, np, frames[0], classes)
            layer = dk.layers.DenseCRF.from_params(params, iterations=10)
            contenders = {}
            if "layer" in args.paths:
                if args.backend == "tensorflow":
                    import tensorflow as tf

                    graph = tf.function(lambda a, b, layer=layer: layer([a, b]))
                else:
                    import jax

                    graph = jax.jit(lambda a, b, layer=layer: layer([a, b]))

                def bare(image, graph=graph, net=net):
                    logits = np.asarray(net.predict_on_batch(image[None].astype(np.float32)))
                    return np.asarray(graph(logits, image[None].astype(np.float32)))[0].argmax(-1)
                contenders["layer"] = bare
            if "segment" in args.paths:
                contenders["segment"] = (
                    lambda image, net=net, layer=layer: dk.segment(net, image, crf=layer).labels)
            if "crf_refined" in args.paths:
                refined = dk.models.CRFRefined(net, layer)
                contenders["crf_refined"] = (
                    lambda image, refined=refined: dk.segment(refined, image).labels)
            unaries = {}

            def reference(image, net=net):
                key = id(image)
                if key not in unaries:  # the net's softmax: computed outside the timed call
                    logits = np.asarray(net.predict_on_batch(image[None].astype(np.float32)))[0]
                    probs = np.exp(logits - logits.max(-1, keepdims=True))
                    unaries[key] = (probs / probs.sum(-1, keepdims=True)).astype(np.float32)
                return pydensecrf_labels(dcrf, unary_from_softmax, np, unaries[key], image,
                                         params)

            timed = dict(contenders) if args.ours_only else dict(contenders, pydensecrf=reference)
            for fn in list(contenders.values()) + [reference]:
                fn(frames[-1])  # warm-up on a frame never timed
            times = {key: [] for key in timed}
            agree = {key: 0 for key in contenders}
            pixels = 0
            for rep in range(args.reps):
                image = frames[rep]
                reference(image)  # caches the unaries before any timing
                outputs = {}
                for key, fn in timed.items():
                    start = time.perf_counter()
                    outputs[key] = fn(image)
                    times[key].append(time.perf_counter() - start)
                expected = outputs.get("pydensecrf")
                if expected is None:
                    expected = reference(image)
                for key in contenders:
                    agree[key] += int(np.sum(outputs[key] == expected))
                pixels += expected.size
            medians = {k: statistics.median(v) for k, v in times.items()}
            for key in contenders:
                row = dict(size=f"{width}x{height}", labels=classes, path=key,
                           ours_median_s=medians[key], ours_min_s=min(times[key]),
                           agreement=agree[key] / pixels, times_s=times[key])
                if not args.ours_only:
                    row.update(pydensecrf_median_s=medians["pydensecrf"],
                               ratio=medians[key] / medians["pydensecrf"],
                               pydensecrf_times_s=times["pydensecrf"])
                rows.append(row)
                ratio = "" if args.ours_only else (
                    f"  pydensecrf {row['pydensecrf_median_s']:.3f} s  ratio {row['ratio']:.2f}")
                print(f"{width}x{height} {classes:2d} labels {key:12s} ours "
                      f"{row['ours_median_s']:.3f} s (min {row['ours_min_s']:.3f}){ratio}  "
                      f"agreement {100 * row['agreement']:.2f}%", flush=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    import pydensecrf

    print("RESULT_JSON " + json.dumps(dict(
        benchmark="dense_crf", command=" ".join([os.path.basename(sys.executable)] + sys.argv),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), source=source,
        preset=args.preset, params=list(params), iterations=10, reps=args.reps,
        backend=keras.backend.backend(), cpu=cpu, cores=os.cpu_count(),
        versions=dict(python=platform.python_version(), keras=keras.__version__,
                      deeplab_keras=dk.__version__,
                      pydensecrf=getattr(pydensecrf, "__version__", "unknown")),
        rows=rows)))


if __name__ == "__main__":
    main()
