"""Frozen weights vs variables: one of our models' TF graph with its weights as graph constants
(`convert_variables_to_constants_v2`) against the same `tf.function` reading variables, input
size left dynamic, 8 interleaved calls after warm-up; prints the max output difference, medians
and mins.

Usage:

    python benchmarks/frozen_graph.py xception65     # DeepLabV3+ Xception-65, 512x512
    python benchmarks/frozen_graph.py mobilenetv2    # DeepLabV3+ MobileNetV2, 512x512
    python benchmarks/frozen_graph.py resnet101 513  # DeepLabV3-ResNet101 OS8
"""

import os
import statistics
import sys
import time


def build(models, which):
    if which == "resnet101":
        return models.DeepLabV3(num_classes=21, backbone="resnet101_v1_5", output_stride=8,
                                head="torchvision")
    return models.DeepLabV3Plus(num_classes=21, backbone=which, output_stride=16,
                                separable=True, aspp_rates=(12, 24, 36))


def main(argv):
    which = argv[0] if argv else "xception65"
    size = int(argv[1]) if len(argv) > 1 else 512
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    from deeplab_keras import models

    model = build(models, which)
    variables = tf.function(lambda x: model(x, training=False), input_signature=[
        tf.TensorSpec((None, None, None, 3), tf.float32)])
    frozen = convert_to_constants.convert_variables_to_constants_v2(
        variables.get_concrete_function())
    image = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)),
                        tf.float32)

    def run(fn):
        out = fn(image)
        return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)

    contenders = {"variables": variables, "frozen": frozen}
    print("max |difference|", float(np.abs(run(variables) - run(frozen)).max()))
    for fn in contenders.values():
        run(fn)
    times = {name: [] for name in contenders}
    for rep in range(8):
        names = list(contenders) if rep % 2 == 0 else list(contenders)[::-1]
        for name in names:
            start = time.perf_counter()
            run(contenders[name])
            times[name].append(time.perf_counter() - start)
    for name, ts in times.items():
        print(f"{which} {name}: median {statistics.median(ts):.3f} s, min {min(ts):.3f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
