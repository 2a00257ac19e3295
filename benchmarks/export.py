"""Export benchmark: latency, file size and accuracy of every export of a bundled CamVid model.

For `--model` (`deeplabv3plus_resnet50w40_camvid` or `deeplabv3plus_mobilenetv2_camvid`, the
default) at 360x480 on this CPU, in ONE process, it exports the
model to a SavedModel, LiteRT float32 / float16 / dynamic-range int8 / full int8 (calibrated on
`--calibration_images` CamVid *train* images) and ONNX, then times each export's runtime
against the Keras TF graph (`tf.function` of the same uint8 -> labels/probabilities model),
interleaved (the order rotates every repetition) after warm-up; medians are reported. With
`--data_dir`, every export is also scored on CamVid *val* (label agreement with the Keras model
and mIoU; void ignored). With `--write_card_data`, the figures go into the bundled model's
evaluation.json (key "export"), which `zoo/make_cards.py` renders into the model card.

`--architectures` instead converts full-size random-weight models of each backbone family
(MobileNetV2, Xception-65, ResNet-101, VGG-16) at 513x513 to each format and reports which
convert, with the reason for any that do not, and their float32 agreement.

Usage:

    python benchmarks/export.py --data_dir ../shared/data/camvid --write_card_data
    python benchmarks/export.py --model deeplabv3plus_resnet50w40_camvid \
        --data_dir ../shared/data/camvid --write_card_data
    python benchmarks/export.py --architectures
    python benchmarks/export.py --smoke          # tiny settings, to test the script

The last line printed is `RESULT_JSON {...}` (machine, versions, command, figures).
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODEL = "deeplabv3plus_mobilenetv2_camvid"
EXPORTS = (("tf_saved_model", "none"), ("litert", "none"), ("litert", "float16"),
           ("litert", "dynamic_int8"), ("litert", "int8"), ("onnx", "none"))
ARCHITECTURES = {
    "mobilenetv2": ("deeplabv3plus_mobilenetv2", {}),
    "xception65": ("deeplabv3plus_xception65", {}),
    "resnet101": ("deeplabv3_resnet101", {}),
    "vgg16": ("deeplabv2_vgg16", {}),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=MODEL, help="Bundled CamVid model (registry name).")
    p.add_argument("--data_dir", default=None, help="CamVid root: calibrate on train, score val.")
    p.add_argument("--val_images", type=int, default=None, help="Score only the first N.")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--write_card_data", action="store_true")
    p.add_argument("--architectures", action="store_true")
    p.add_argument("--size", type=int, default=513, help="--architectures: square input size.")
    p.add_argument("--smoke", action="store_true")
    return p.parse_args(argv)


def machine():
    import keras
    import tensorflow as tf

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "tensorflow": tf.__version__,
                "keras": keras.__version__}
    for name, module in (("onnxruntime", "onnxruntime"), ("tf2onnx", "tf2onnx"),
                         ("ai-edge-litert", "ai_edge_litert")):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "versions": versions}


def keras_graph(model, size):
    """The Keras TF graph: `tf.function` of the serving model (uint8 in, labels/probs out)."""
    import tensorflow as tf

    from deeplab_keras.deploy.serving import serving_model

    serving = serving_model(model, size, batch_size=1)
    fn = tf.function(lambda x: serving(x, training=False), reduce_retracing=True)
    return lambda x: tuple(fn(tf.constant(x))[k].numpy() for k in ("labels", "probabilities"))


def timed(contenders, image, reps, warmup):
    names = list(contenders)
    for name in names:
        for _ in range(warmup):
            contenders[name](image)
    times = {name: [] for name in names}
    for rep in range(reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            start = time.perf_counter()
            contenders[name](image)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def camvid(data_dir, split, limit):
    import numpy as np

    from deeplab_keras import data

    layout = data.get_layout("camvid")
    examples = data.list_examples(layout, data_dir, split)[:limit]
    pairs = [data.load_example(example, layout) for example in examples]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), layout


def score(predicted, truth, reference_labels, layout):
    import numpy as np

    from deeplab_keras.evaluation import ConfusionMatrix

    matrix = ConfusionMatrix(layout.num_classes, layout.ignore_label)
    for labels, mask in zip(predicted, truth):
        matrix.update(mask, labels)
    return {"label_agreement": float((np.stack(predicted) == reference_labels).mean()),
            "miou": float(matrix.miou)}


def bundled_benchmark(args):
    import numpy as np

    import deeplab_keras as dk
    from deeplab_keras.deploy.runtimes import load_exported
    from deeplab_keras.files import disk_size

    model = dk.load_model(args.model)
    examples = np.stack([dk.inference.load_rgb(p) for p in dk.assets.example_images()])
    size = examples.shape[1:3]
    val = calibration = None
    if args.data_dir:
        calibration = os.path.join(args.data_dir, "train")  # 100 of them, evenly spaced
        val = camvid(args.data_dir, "val", args.val_images)
    else:
        calibration = examples[:1]
    exports = EXPORTS[:2] + EXPORTS[-1:] if args.smoke else EXPORTS
    folder = tempfile.mkdtemp(prefix="export_bench_")
    results, contenders = [], {"keras_tf_graph": keras_graph(model, size)}
    for format, quantize in exports:
        ext = {"tf_saved_model": "", "litert": ".tflite", "onnx": ".onnx"}[format]
        path = os.path.join(folder, f"{format}_{quantize}{ext}")
        start = time.perf_counter()
        dk.export(model, path, format=format, input_size=size if format == "litert" else None,
                  quantize=quantize, calibration_data=calibration if quantize == "int8" else None)
        name = format + ("" if quantize == "none" else f"_{quantize}")
        results.append({"export": name, "format": format, "quantize": quantize,
                        "convert_seconds": round(time.perf_counter() - start, 1),
                        "bytes": disk_size(path)})
        contenders[name] = load_exported(path, args.threads)
        print(f"exported {name}: {results[-1]['bytes'] / 1e6:.1f} MB in "
              f"{results[-1]['convert_seconds']} s", flush=True)
    reference = [contenders["keras_tf_graph"](image[None]) for image in examples]
    for result in results:
        outs = [contenders[result["export"]](image[None]) for image in examples]
        result["examples_max_probability_diff"] = float(max(
            np.abs(o[1] - r[1]).max() for o, r in zip(outs, reference)))
        result["examples_label_agreement"] = float(np.mean(
            [(o[0] == r[0]).mean() for o, r in zip(outs, reference)]))
    medians = timed(contenders, examples[:1], args.reps, args.warmup)
    keras_seconds = medians.pop("keras_tf_graph")
    for result in results:
        result["median_ms"] = round(1000 * medians[result["export"]], 1)
        result["vs_keras_tf_graph"] = round(medians[result["export"]] / keras_seconds, 3)
    summary = {"model": args.model, "input_size": list(size), "keras_tf_graph_median_ms":
               round(1000 * keras_seconds, 1), "exports": results}
    if val is not None:
        images, truth, layout = val
        keras_labels = np.stack([contenders["keras_tf_graph"](i[None])[0][0] for i in images])
        base = score(list(keras_labels), truth, keras_labels, layout)
        summary["val"] = {"images": len(images), "keras_miou": base["miou"],
                          "calibration": "100 of the 367 CamVid train images, evenly spaced "
                                         "in sorted order (deeplab_keras.deploy.calibration)"}
        for result in results:
            run = contenders[result["export"]]
            result.update({f"val_{k}": v for k, v in score(
                [run(i[None])[0][0] for i in images], truth, keras_labels, layout).items()})
            print(f"val {result['export']}: {result['val_label_agreement']:.4%} agreement, "
                  f"mIoU {100 * result['val_miou']:.2f} (Keras {100 * base['miou']:.2f})",
                  flush=True)
    return summary


def architectures_benchmark(args):
    import keras
    import numpy as np

    import deeplab_keras as dk
    from deeplab_keras.deploy.runtimes import compare
    from deeplab_keras.files import disk_size

    size = (65, 65) if args.smoke else (args.size, args.size)
    image = np.random.default_rng(0).integers(0, 256, (1, *size, 3)).astype(np.uint8)
    folder = tempfile.mkdtemp(prefix="export_arch_")
    rows = []
    for backbone, (architecture, kwargs) in ARCHITECTURES.items():
        keras.backend.clear_session()
        model = dk.models.build(architecture, 21, **kwargs)
        for format in ("tf_saved_model", "litert", "onnx"):
            ext = {"tf_saved_model": "", "litert": ".tflite", "onnx": ".onnx"}[format]
            path = os.path.join(folder, f"{architecture}{ext}")
            row = {"backbone": backbone, "architecture": architecture, "format": format}
            start = time.perf_counter()
            try:
                dk.export(model, path, format=format,
                          input_size=size if format == "litert" else None)
                agreement = compare(model, path, image)
                row.update(converts=True, bytes=disk_size(path),
                           max_probability_diff=agreement.max_probability_diff,
                           label_agreement=agreement.label_agreement)
            except Exception as error:  # noqa: BLE001 - reported, not hidden
                row.update(converts=False, reason=f"{type(error).__name__}: {error}"[:500])
            row["convert_seconds"] = round(time.perf_counter() - start, 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return {"input_size": list(size), "architectures": rows}


def write_card_data(summary):
    from deeplab_keras import assets
    from deeplab_keras.files import write_json_atomic
    from deeplab_keras.weights import registry

    path = assets.package_path(registry.get_record(summary["model"]).evaluation)
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    data["export"] = summary
    write_json_atomic(path, data)
    print(f"wrote the export figures into {path}; run python zoo/make_cards.py")


def main(argv=None):
    args = parse_args(argv)
    if args.smoke:
        args.reps, args.warmup = 2, 1
        args.val_images = min(args.val_images or 3, 3)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    summary = architectures_benchmark(args) if args.architectures else bundled_benchmark(args)
    summary.update(machine=machine(), date=time.strftime("%Y-%m-%d"),
                   command="python benchmarks/export.py " + shlex.join(sys.argv[1:]))
    if not args.architectures:
        for r in summary["exports"]:
            print(f"{r['export']:>20}: {r['median_ms']:8.1f} ms ({r['vs_keras_tf_graph']:.2f}x "
                  f"Keras TF graph {summary['keras_tf_graph_median_ms']} ms), "
                  f"{r['bytes'] / 1e6:6.1f} MB")
    if args.write_card_data and not args.smoke and not args.architectures:
        write_card_data(summary)
    print("RESULT_JSON " + json.dumps(summary))


if __name__ == "__main__":
    main()
