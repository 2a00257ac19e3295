"""Where the dense CRF's time goes on TensorFlow: per stage, at the sizes `crf.py` times.

For each size (`--sizes`) and label count (`--labels`), on CamVid val frames (synthetic images if
../shared is absent), each stage of `DenseCRF` (DeepLab ResNet-101 VOC parameters, 10 mean-field
iterations) is run alone in its own `tf.function` and timed (median over `--reps` frames, after
a warm-up frame):

* `layer`: the whole layer, as `crf.py`'s `layer` column;
* `lattice_build`: the permutohedral lattice of the frame (once per image);
* `normaliser`: the filter of ones that gives the symmetric normalisation (once per image);
* `splat`, `blur`, `slice`: the three steps of one appearance filter on [N, C] values (each
  mean-field iteration runs them once; `normalized_filter_fn` runs splat and slice in pixel
  blocks on the cores, this profile runs the unblocked matrices);
* `appearance_filter`: one whole blocked appearance filter as the layer runs it;
* `smoothness_filter`: one exact separable Gaussian (theta_gamma) of [H, W, C];
* `softmax`: one softmax of [H, W, C].

`per_image = lattice_build + normaliser`, `per_iteration = appearance_filter +
smoothness_filter + softmax`; the printed estimate `per_image + 10 * per_iteration` is
compared with `layer`. The number of lattice vertices M (against N pixels) is printed too.

Usage:

    python benchmarks/crf_profile.py                      # 480x360, 11 and 21 labels
    python benchmarks/crf_profile.py --sizes 500x375 --labels 21 --reps 5
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="480x360", help="width x height, comma list.")
    p.add_argument("--labels", default="11,21", help="Label counts, comma list.")
    p.add_argument("--reps", type=int, default=5, help="Frames timed per stage (median).")
    p.add_argument("--preset", default="deeplab_resnet101_voc")
    args = p.parse_args(argv)
    args.sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    args.labels = [int(v) for v in args.labels.split(",")]
    return args


def median_time(calls, warm_each=False):
    """Median seconds of the zero-argument `calls` (one per frame; results fetched to the host)
    but the first, after a warm-up call of the first (`warm_each`: of every one, for functions
    traced per frame)."""
    import numpy as np

    def fetch(out):
        return [np.asarray(t) for t in (out if isinstance(out, (list, tuple)) else [out])]

    for call in calls if warm_each else calls[:1]:
        fetch(call())
    times = []
    for call in calls[1:]:
        start = time.perf_counter()
        fetch(call())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf
    from crf import colour_net
    from crf import load_frames
    from PIL import Image

    import deeplab_keras as dk
    from deeplab_keras.crf import lattice as lattice_lib
    from deeplab_keras.crf import lattice_tf
    from deeplab_keras.crf.params import preset
    from deeplab_keras.layers.dense_crf import separable_gaussian

    params = preset(args.preset)
    w1, theta_alpha, theta_beta, w2, theta_gamma = params
    rows = []
    for width, height in args.sizes:
        frames, source = load_frames(width, height, args.reps + 1, np, Image)
        images = [tf.constant(f.astype(np.float32)) for f in frames]
        features = [lattice_lib.image_features(im, theta_alpha, theta_beta) for im in images]
        lattices = [lattice_lib.build_lattice(f) for f in features]
        vertices = [int(lat["num_vertices"]) for lat in lattices]

        @tf.function(reduce_retracing=True)
        def build(f):
            lat = lattice_lib.build_lattice(f)
            return lat["n1"], lat["slice"].values

        @tf.function(reduce_retracing=True)
        def normaliser(f):
            return lattice_lib.normalization(lattice_lib.build_lattice(f))

        per_image = {"lattice_build": median_time([lambda f=f: build(f) for f in features])}
        per_image["normaliser"] = median_time(
            [lambda f=f: normaliser(f) for f in features]) - per_image["lattice_build"]
        for classes in args.labels:
            net = colour_net(keras, np, frames[0], classes)
            logits = [tf.constant(net.predict_on_batch(im[None].numpy())) for im in images]
            layer = dk.layers.DenseCRF.from_params(params, iterations=10)
            whole = tf.function(lambda a, b, layer=layer: layer([a, b]), reduce_retracing=True)
            q = [tf.nn.softmax(tf.reshape(x, (-1, classes))) for x in logits]
            splatted = [tf.sparse.sparse_dense_matmul(lat["slice"], v, adjoint_a=True)
                        for lat, v in zip(lattices, q)]
            blurred = [lattice_tf._blur(lat, v, False) for lat, v in zip(lattices, splatted)]
            stages = {"layer": median_time([lambda x=x, im=im: whole(x, im[None])
                                            for x, im in zip(logits, images)])}
            # One function per frame (its lattice is a constant of it); traced and warmed first.
            fns = {
                "splat": [tf.function(lambda v, s=lat["slice"]: tf.sparse.sparse_dense_matmul(
                    s, v, adjoint_a=True)) for lat in lattices],
                "blur": [tf.function(lambda v, lat=lat: lattice_tf._blur(lat, v, False))
                         for lat in lattices],
                "slice": [tf.function(lambda v, s=lat["slice"]: tf.sparse.sparse_dense_matmul(
                    s, v)) for lat in lattices],
                "appearance_filter": [
                    tf.function(lattice_lib.normalized_filter_fn(lat, weight=w1))
                    for lat in lattices],
            }
            stage_inputs = {"splat": q, "blur": splatted, "slice": blurred,
                            "appearance_filter": q}
            for name, per_frame in fns.items():
                stages[name] = median_time([lambda fn=fn, x=x: fn(x) for fn, x in zip(
                    per_frame, stage_inputs[name])], warm_each=True)
            maps = [tf.reshape(v, (height, width, classes)) for v in q]
            smooth = tf.function(lambda v: separable_gaussian(v, theta_gamma),
                                 reduce_retracing=True)
            softmax = tf.function(lambda v: tf.nn.softmax(v))
            stages["smoothness_filter"] = median_time([lambda m=m: smooth(m) for m in maps])
            stages["softmax"] = median_time([lambda m=m: softmax(m) for m in maps])
            image_cost = per_image["lattice_build"] + per_image["normaliser"]
            iteration = (stages["appearance_filter"] + stages["smoothness_filter"]
                         + stages["softmax"])
            row = dict(size=f"{width}x{height}", labels=classes, frames=source,
                       pixels=width * height, vertices_median=int(np.median(vertices)),
                       **per_image, **stages, per_image_s=image_cost, per_iteration_s=iteration,
                       estimate_s=image_cost + 10 * iteration)
            rows.append(row)
            print(f"\n{width}x{height}, {classes} labels ({source}; N={width * height}, "
                  f"M={row['vertices_median']} vertices, median)")
            for key in ("layer", "lattice_build", "normaliser", "appearance_filter", "splat",
                        "blur", "slice", "smoothness_filter", "softmax"):
                share = ""
                if key in ("lattice_build", "normaliser"):
                    share = f"  {100 * row[key] / row['layer']:.0f}% of layer (once)"
                elif key in ("appearance_filter", "smoothness_filter", "softmax"):
                    share = f"  {100 * 10 * row[key] / row['layer']:.0f}% of layer (x10)"
                print(f"  {key:18s} {1000 * row[key]:8.1f} ms{share}")
            print(f"  estimate per_image + 10 x per_iteration = {1000 * row['estimate_s']:.0f} "
                  f"ms (layer {1000 * row['layer']:.0f} ms)", flush=True)
    print("RESULT_JSON " + json.dumps(dict(
        benchmark="dense_crf_profile", command=" ".join(sys.argv), tensorflow=tf.__version__,
        cores=len(os.sched_getaffinity(0)), date=time.strftime("%Y-%m-%d"), rows=rows)))


if __name__ == "__main__":
    main()
