"""Native dilated depthwise convolution on TF CPU vs the SpaceToBatch path it replaced.

One process, one model (random weights), two `tf.function`s traced with the layer's depthwise
op bound to each path, called alternately after warm-up; medians, min and the max output
difference are printed, then a JSON line.

Usage:

    python benchmarks/dilated_depthwise.py --model xception65 --output_stride 8 --reps 10
    python benchmarks/dilated_depthwise.py --model mobilenetv2 --output_stride 8
"""

import argparse
import json
import os
import statistics
import sys
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("xception65", "mobilenetv2"), default="xception65")
    p.add_argument("--output_stride", type=int, default=8)
    p.add_argument("--size", type=int, default=513)
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import numpy as np
    import tensorflow as tf

    from deeplab_keras import models
    from deeplab_keras.layers import atrous_conv
    from deeplab_keras.ops import conv

    model = models.DeepLabV3Plus(backbone=args.model, output_stride=args.output_stride,
                                 num_classes=21, separable=args.model == "xception65")
    image = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, args.size, args.size, 3)),
                        tf.float32)

    def portable(x, kernel, strides, padding, rate):
        return keras.ops.depthwise_conv(x, kernel, strides=strides, padding=padding,
                                        dilation_rate=rate, data_format="channels_last")

    paths = {"native": conv.atrous_depthwise_conv2d, "space_to_batch": portable}
    functions, outputs, space_to_batch = {}, {}, {}
    for name, op in paths.items():
        atrous_conv.atrous_depthwise_conv2d = op
        functions[name] = tf.function(lambda x: model(x, training=False))
        outputs[name] = functions[name](image).numpy()  # traced with this op
        graph = functions[name].get_concrete_function(image).graph
        space_to_batch[name] = sum(op.type == "SpaceToBatchND" for op in graph.get_operations())
    atrous_conv.atrous_depthwise_conv2d = paths["native"]
    for fn in functions.values():
        fn(image)
    times = {name: [] for name in functions}
    for rep in range(args.reps):
        order = list(functions) if rep % 2 == 0 else list(functions)[::-1]
        for name in order:
            start = time.perf_counter()
            functions[name](image).numpy()
            times[name].append(time.perf_counter() - start)
    result = dict(
        benchmark="dilated_depthwise", command=" ".join(["python"] + sys.argv),
        model=args.model, output_stride=args.output_stride, size=args.size,
        space_to_batch_ops=space_to_batch,
        max_abs_diff=float(np.abs(outputs["native"] - outputs["space_to_batch"]).max()),
        median_s={k: statistics.median(v) for k, v in times.items()},
        min_s={k: min(v) for k, v in times.items()}, times_s=times,
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), tensorflow=tf.__version__)
    result["ratio_native_over_space_to_batch"] = (
        result["median_s"]["native"] / result["median_s"]["space_to_batch"])
    for name in functions:
        print(f"{name:15s} median {result['median_s'][name]:.3f} s, min "
              f"{result['min_s'][name]:.3f} s")
    print(f"native / space_to_batch = {result['ratio_native_over_space_to_batch']:.3f}; "
          f"max |difference| {result['max_abs_diff']:.2e}; SpaceToBatchND ops in the graph: "
          f"{space_to_batch}")
    print("RESULT_JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
