"""Turns a device run of `train_on_device.py` into a bundled-weights file, on TensorFlow (issue 18).

Run here, on TensorFlow on the CPU, after the device run's files came back:

1. reads `train_log.json` and the best-val weight shards (`best.weights-K-of-N.h5`, trained on
   JAX) and loads them, by variable path, into a `deeplab_keras.models.DeepLabV3Plus` built on
   TensorFlow from the architecture arguments in the log (every variable must match);
2. writes them as the package's bundled format (`deeplab_keras.weights.cache`: float16
   storage, batch-norm statistics in float32; what `zoo/export_bundled.py` writes) to
   `--output`, and prints its sha256, size and parameter count for a `WeightRecord`;
3. loads that file back into a fresh model and checks it against JAX on the device's probe
   (`probe.npz`: the first val frame and the JAX logits of the same float16 weights): a
   float32 CPU probe must agree to `--probe_atol` (relative to the largest logit), any
   other (bfloat16 or GPU arithmetic) on at least `--min_probe_agreement` of the labels;
4. scores CamVid `--split` (val; the original PNG frames) with that file on TensorFlow: mIoU,
   per-class IoU, pixel accuracy, next to the device's own val figure (JPEG-95 frames);
5. writes all of it to `--report` (JSON), with a training record in the shape of
   `zoo/export_bundled.py`'s `evaluation.json` "training" entry.

It never replaces a registered bundled model: `--output` is required, and a path that holds
a registered model's weights, or any existing file without `--force`, is refused. To ship the
result, write it to `deeplab_keras/assets/models/<new name>/weights.h5`, register a new
`WeightRecord` (deeplab_keras/weights/records/bundled.py) with the printed values and run
`zoo/evaluate_camvid.py --name <new name>` for the card.

Usage:
    python3 zoo/camvid_gpu/finish_bundle.py --run_dir /work/.device/.../out \\
        --output runs/camvid_gpu/weights.h5 --data_dir ../shared/data/camvid
    python3 zoo/camvid_gpu/finish_bundle.py --run_dir /tmp/out --output /tmp/w.h5 --max_images 2
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run_dir", required=True, help="The device run's output folder.")
    p.add_argument("--output", required=True, help="Bundled weights file to write (.h5).")
    p.add_argument("--report", default=None,
                   help="JSON report (default: --output with .finish.json for .h5).")
    p.add_argument("--name", default="deeplabv3plus_resnet50w40_camvid",
                   help="Registry name written into the file.")
    p.add_argument("--data_dir", default=os.path.join(ROOT, "..", "shared", "data", "camvid"))
    p.add_argument("--split", default="val", choices=("val", "train"))
    p.add_argument("--max_images", type=int, default=0, help="First N frames only (trials).")
    p.add_argument("--probe_atol", type=float, default=1e-3,
                   help="Largest |TF - JAX| logit difference, as a fraction of the largest "
                        "|logit|, for a float32 probe computed on a CPU.")
    p.add_argument("--min_probe_agreement", type=float, default=0.98,
                   help="Smallest fraction of equal labels for any other probe (bfloat16 or "
                        "GPU arithmetic).")
    p.add_argument("--force", action="store_true", help="Overwrite an existing --output.")
    return p.parse_args(argv)


def refuse_registered(path):
    """Raises SystemExit when `path` is the weights file of a registered bundled model."""
    from deeplab_keras import assets
    from deeplab_keras.weights import registry

    target = os.path.realpath(path)
    for name in registry.list_models():
        record = registry.get_record(name)
        if record.bundled and os.path.realpath(assets.package_path(record.bundled)) == target:
            raise SystemExit(f"--output {path} is the bundled weights of the registered model "
                             f"{name}; this script never replaces it. Give a new path.")


def best_weights(run_dir, log):
    """`{variable path: array}` of the best weights, from every shard the log names."""
    import shards

    files = (log.get("best") or {}).get("files")
    if not files:
        raise SystemExit(f"{run_dir}/train_log.json names no best weights: did the run reach "
                         "an evaluation?")
    missing = [name for name in files if not os.path.isfile(os.path.join(run_dir, name))]
    if missing:
        raise SystemExit(f"{run_dir}: {missing} missing (the log names {files}).")
    return shards.read_shards(run_dir, files)


def assign_all(model, stored):
    """Assigns every variable of `model` from `stored` (by path); all must match exactly."""
    left = dict(stored)
    missing, wrong = [], []
    for variable in model.weights:
        value = left.pop(variable.path, None)
        if value is None:
            missing.append(variable.path)
        elif tuple(value.shape) != tuple(variable.shape):
            wrong.append(f"{variable.path}: file {value.shape} vs model {tuple(variable.shape)}")
        else:
            variable.assign(value.astype(variable.dtype))
    if missing or wrong or left:
        raise SystemExit(f"the device weights do not fit the model: missing {missing[:3]}, "
                         f"wrong shapes {wrong[:3]}, unused {sorted(left)[:3]}")


def check_probe(model, probe, atol, min_agreement):
    import numpy as np

    image, reference = probe["image"], probe["logits"].astype(np.float32)
    ours = np.asarray(model(image[None].astype(np.float32), training=False))[0]
    diff = float(np.max(np.abs(ours - reference)))
    scale = max(1.0, float(np.max(np.abs(reference))))
    agreement = float(np.mean(ours.argmax(-1) == reference.argmax(-1)))
    precision, platform = str(probe["precision"]), str(probe["platform"])
    exact = precision == "float32" and platform == "cpu"
    ok = diff <= atol * scale if exact else agreement >= min_agreement
    rule = (f"max |diff| <= {atol} x {scale:.3g}" if exact
            else f"label agreement >= {min_agreement}")
    return {"device_precision": precision, "device_platform": platform,
            "max_abs_logit_diff": diff, "max_abs_logit": scale,
            "label_agreement": agreement, "rule": rule, "passed": bool(ok)}


def evaluate(model, data_dir, split, limit):
    import numpy as np

    from deeplab_keras import data
    from deeplab_keras import evaluation
    from deeplab_keras.data.classes import CAMVID_CLASSES

    layout = data.get_layout("camvid")
    examples = data.list_examples(layout, data_dir, split)
    if limit:
        examples = examples[:limit]
    cm = evaluation.ConfusionMatrix(len(CAMVID_CLASSES), layout.ignore_label, CAMVID_CLASSES)
    start = time.perf_counter()
    for _, image, mask in data.iterate_eval(examples, layout):
        probs = evaluation.predict_probabilities(model, image)
        cm.update(mask, np.argmax(probs, axis=-1))
    seconds = (time.perf_counter() - start) / max(len(examples), 1)
    print(cm.table(CAMVID_CLASSES))
    return {"split": split, "images": len(examples), "frames": "original PNG",
            "miou": float(cm.miou), "pixel_accuracy": float(cm.pixel_accuracy()),
            "per_class_iou": [None if v != v else float(v) for v in cm.per_class_iou()],
            "seconds_per_image": round(seconds, 3)}


def training_record(log):
    """The device run in the shape of export_bundled.py's evaluation.json "training" entry."""
    flags = log.get("flags", {})
    train_images = int(log.get("train_images") or 367)
    stage = {"command": f"python3 zoo/camvid_gpu/{log.get('command', '')}",
             "steps": int(log.get("steps") or 0), "batch_size": int(flags.get("batch_size", 0)),
             "epochs": float(log.get("steps") or 0) * flags.get("batch_size", 0) / train_images,
             "minutes": round(float(log.get("train_seconds") or 0) / 60, 2),
             "val_miou": float((log.get("best") or {}).get("val_miou") or 0),
             "val_scales": [1.0], "hardware": log.get("hardware", "unknown"),
             "software": log.get("software", {})}
    return {"stages": [stage], "hardware": stage["hardware"],
            "software": ", ".join(f"{k} {v}" for k, v in stage["software"].items())}


def main(argv=None):
    args = parse_args(argv)
    sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]
    import keras
    import numpy as np

    from deeplab_keras import models
    from deeplab_keras.data.classes import CAMVID_CLASSES
    from deeplab_keras.weights import cache
    from deeplab_keras.weights import specs

    if keras.backend.backend() != "tensorflow":
        raise SystemExit(f"finish_bundle.py runs on TensorFlow (it proves the JAX-trained "
                         f"weights load there); KERAS_BACKEND is {keras.backend.backend()!r}.")
    output = os.path.abspath(args.output)
    refuse_registered(output)
    if os.path.exists(output) and not args.force:
        raise SystemExit(f"{output} exists; pass --force to overwrite it.")
    report_path = args.report or (output[:-3] if output.endswith(".h5") else output) + \
        ".finish.json"
    with open(os.path.join(args.run_dir, "train_log.json"), encoding="utf-8") as f:
        log = json.load(f)
    if log.get("architecture") != "DeepLabV3Plus":
        raise SystemExit(f"unexpected architecture {log.get('architecture')!r} in the log.")
    arch = dict(log["arch_kwargs"])
    stored = best_weights(args.run_dir, log)

    model = models.DeepLabV3Plus(**arch)
    assign_all(model, stored)
    num_classes = int(arch["num_classes"])
    stub = specs.WeightRecord(
        name=args.name, summary="", architecture="DeepLabV3Plus", arch_kwargs={},
        num_classes=num_classes, class_names=(), palette="camvid", preprocessing=None,
        metrics=(), urls=(), file_format="bundled-h5", converter="deeplab_keras_h5",
        license="", paper="", num_params=0)
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    digest = cache.write_converted_weights(model, output, stub, storage="float16")
    os.unlink(output + ".sha256")  # a bundled record pins the hash itself
    size = os.path.getsize(output)
    print(f"Wrote {output}: {size:,} bytes, sha256 {digest}")

    shipped = models.DeepLabV3Plus(**arch)
    cache.load_converted_weights(shipped, output, stub)
    report = {"name": args.name, "output": output, "sha256": digest, "size": size,
              "num_params": int(shipped.count_params()), "architecture": "DeepLabV3Plus",
              "arch_kwargs": {k: v for k, v in arch.items() if k != "num_classes"},
              "num_classes": num_classes, "class_names": list(CAMVID_CLASSES[:num_classes]),
              "backend": keras.backend.backend(), "run_dir": os.path.abspath(args.run_dir),
              "device": {k: log.get(k) for k in ("hardware", "software", "steps", "epochs",
                                                  "train_seconds", "images_per_second",
                                                  "stopped_by", "best", "float16_check",
                                                  "tensorflow_imported")},
              "training": training_record(log)}
    report["device"]["float16_check"] = {k: v for k, v in (log.get("float16_check") or {})
                                         .items() if not k.startswith("confusion")}
    probe_path = os.path.join(args.run_dir, "probe.npz")
    if os.path.isfile(probe_path):
        with np.load(probe_path) as probe:
            report["probe"] = check_probe(shipped, probe, args.probe_atol,
                                          args.min_probe_agreement)
        p = report["probe"]
        print(f"Probe (first val frame), TF vs JAX ({p['device_precision']} on "
              f"{p['device_platform']}): max |diff| {p['max_abs_logit_diff']:.3g} (largest "
              f"|logit| {p['max_abs_logit']:.3g}), label agreement {p['label_agreement']:.5f}: "
              f"{'passed' if p['passed'] else 'FAILED'} ({p['rule']})")
    else:
        report["probe"] = None
        print(f"WARNING: no {probe_path}: the TF/JAX probe check did not run.")

    if os.path.isdir(args.data_dir):
        report["evaluation"] = evaluate(shipped, args.data_dir, args.split, args.max_images)
        device_miou = (log.get("float16_check") or {}).get("val_miou_float16_weights")
        print(f"CamVid {args.split} ({report['evaluation']['images']} frames) on TensorFlow with "
              f"{os.path.basename(output)}: mIoU {100 * report['evaluation']['miou']:.2f}"
              + (f"; the device's figure for the same weights (JPEG frames, "
                 f"{log.get('val_images')} of them): {100 * device_miou:.2f}"
                 if device_miou is not None else ""))
    else:
        report["evaluation"] = None
        print(f"WARNING: CamVid is not at {args.data_dir}: no evaluation.")
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    print(f"Wrote {report_path}")
    print(f"WeightRecord: architecture='DeepLabV3Plus', arch_kwargs={report['arch_kwargs']}, "
          f"sha256='{digest}', size={size:_}, num_params={report['num_params']:_}")
    return 0 if report["probe"] is None or report["probe"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
