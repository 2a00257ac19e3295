"""Per-op profile of one of our models' inference graph on TensorFlow CPU.

The model's `tf.function` graph is frozen (variables as constants), run in a TF1 session with
a full trace (the same grappler and oneDNN rewrites as `tf.function`), and the trace's node
times are summed by op type over `--reps` traced calls after warm-up. Prints a table (op type,
ms per call, share, node count) and a JSON line. The sum of node times exceeds the wall time
when ops run in parallel on the cores; the shares show where the work is.

Usage:

    python benchmarks/profile_ops.py                                  # DeepLabV3-ResNet101 OS8
    python benchmarks/profile_ops.py --model deeplabv3plus_mobilenetv2 --size 513
    python benchmarks/profile_ops.py --model deeplabv3plus_xception65 --dtype mixed_bfloat16
"""

import argparse
import collections
import json
import os
import platform
import sys
import time

MODELS = {
    "deeplabv3_resnet101": dict(architecture="DeepLabV3", backbone="resnet101_v1_5",
                                output_stride=8, head="torchvision"),
    "deeplabv3plus_mobilenetv2": dict(architecture="DeepLabV3Plus", backbone="mobilenetv2",
                                      output_stride=16),
    "deeplabv3plus_xception65": dict(architecture="DeepLabV3Plus", backbone="xception65",
                                     output_stride=16, separable=True),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(MODELS), default="deeplabv3_resnet101")
    p.add_argument("--size", type=int, default=513)
    p.add_argument("--classes", type=int, default=21)
    p.add_argument("--dtype", default="float32", help="float32 or mixed_bfloat16.")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--top", type=int, default=15)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from deeplab_keras import models

    spec = dict(MODELS[args.model])
    architecture = getattr(models, spec.pop("architecture"))
    model = architecture(num_classes=args.classes, **spec)
    if args.dtype != "float32":
        model = models.with_dtype_policy(model, args.dtype)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((1, args.size, args.size, 3), tf.float32))
    frozen = convert_variables_to_constants_v2(function)
    graph_def = frozen.graph.as_graph_def()
    image = np.random.default_rng(0).uniform(0, 255, (1, args.size, args.size, 3)).astype(
        np.float32)
    totals = collections.defaultdict(float)
    counts = collections.Counter()
    walls = []
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
        inputs = frozen.inputs[0].name
        outputs = frozen.outputs[0].name
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=os.cpu_count())
        with tf.compat.v1.Session(graph=graph, config=config) as session:
            for _ in range(2):
                session.run(outputs, {inputs: image})
            options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
            for _ in range(args.reps):
                metadata = tf.compat.v1.RunMetadata()
                start = time.perf_counter()
                session.run(outputs, {inputs: image}, options=options, run_metadata=metadata)
                walls.append(time.perf_counter() - start)
                for device in metadata.step_stats.dev_stats:
                    for node in device.node_stats:
                        op = node.timeline_label.split("(")[0].split(" = ")[-1].strip() or (
                            node.node_name)
                        if op in ("_SOURCE", "_Retval", "_Arg", "NoOp"):
                            continue
                        totals[op] += node.op_end_rel_micros / 1000.0
                        counts[op] += 1
    total = sum(totals.values())
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    print(f"{args.model} {args.size}x{args.size} {args.dtype}: wall {1000 * min(walls):.0f} ms "
          f"(min of {args.reps} traced calls), sum of op times {total / args.reps:.0f} ms/call")
    print(f"{'op type':40s} {'ms/call':>9s} {'share':>7s} {'nodes':>6s}")
    table = []
    for op, ms in rows[:args.top]:
        share = ms / total
        table.append(dict(op=op, ms_per_call=ms / args.reps, share=share,
                          nodes=counts[op] // args.reps))
        print(f"{op:40s} {ms / args.reps:9.1f} {100 * share:6.1f}% {counts[op] // args.reps:6d}")
    print("RESULT_JSON " + json.dumps(dict(
        benchmark="profile_ops", command=" ".join(["python"] + sys.argv), model=args.model,
        size=args.size, dtype=args.dtype, wall_ms_min=1000 * min(walls),
        op_sum_ms_per_call=total / args.reps, table=table, cores=os.cpu_count(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        versions=dict(python=platform.python_version(), tensorflow=tf.__version__,
                      keras=keras.__version__))))


if __name__ == "__main__":
    main()
