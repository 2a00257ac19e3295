"""Exports a trained `.keras` model as weights bundled in the package (a registry entry).

Writes `deeplab_keras/assets/models/<name>/weights.h5` (float16 storage, BN
statistics in float32; written atomically) and `evaluation.json` holding the
training record read from each stage's `run.json` and `metrics_val.json`
(what `deeplab-keras train` writes), then prints the values the
`WeightRecord` in `deeplab_keras/weights/records/` needs (sha256, size,
parameter count, architecture arguments). Run `zoo/evaluate_camvid.py` next:
it adds the measured metrics to `evaluation.json`.

Usage:
    python zoo/export_bundled.py --model runs/camvid_stage2/model.keras \\
        --name deeplabv3plus_mobilenetv2_camvid --input_scale 0.5 \\
        --stages runs/camvid_cli_proof,runs/camvid_stage2
"""

import json
import os
import sys

from absl import app
from absl import flags

_MODEL = flags.DEFINE_string("model", None, "Trained .keras model.", required=True)
_NAME = flags.DEFINE_string("name", None, "Registry name.", required=True)
_INPUT_SCALE = flags.DEFINE_float(
    "input_scale", 1.0, "Scale the model was trained at, relative to the dataset's images: the "
    "bundled model resizes its input by it (models.MSC with one scale) and returns logits at "
    "the input size.")
_STAGES = flags.DEFINE_list("stages", [], "Training output folders, in order.")
_RECIPE = flags.DEFINE_string("recipe", "", "One paragraph describing the recipe.")
_TRAIN_IMAGES = flags.DEFINE_integer("train_images", 367, "Training-set size (for epochs).")
_STORAGE = flags.DEFINE_enum("storage", "float16", ["float16", "float32"], "Weight storage.")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stage_batch_size(run):
    """The batch size of a training run: the flags `deeplab-keras train` records in run.json;
    for a run.json written before it recorded them, the command line, else the CLI's default."""
    recorded = run.get("flags") or {}
    if "batch_size" in recorded:
        return int(recorded["batch_size"])
    from deeplab_keras import cli

    return int(command_flags(run["command"]).get("batch_size", cli.FLAGS["batch_size"].default))


def command_flags(command):
    """`{flag: value}` of a `deeplab-keras ...` command line."""
    import shlex

    tokens, out = shlex.split(command), {}
    for i, token in enumerate(tokens):
        if token.startswith("--"):
            name, _, value = token[2:].partition("=")
            if not value and i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value = tokens[i + 1]
            out[name] = value
    return out


def stage_record(folder):
    """One training stage from the files `deeplab-keras train` wrote into `folder`."""
    def read(name):
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise SystemExit(f"{path}: cannot read it ({e}); is {folder} a finished "
                             "`deeplab-keras train` output folder?") from e

    run, metrics = read("run.json"), read("metrics_val.json")
    batch = stage_batch_size(run)
    return {"command": run["command"], "steps": int(metrics["steps"]), "batch_size": batch,
            "epochs": int(metrics["steps"]) * batch / _TRAIN_IMAGES.value,
            "minutes": float(metrics["train_minutes"]), "val_miou": float(metrics["miou"]),
            "val_scales": metrics["scales"], "hardware": run["hardware"],
            "software": run["software"]}


def main(argv):
    del argv
    sys.path.insert(0, ROOT)
    import keras

    from deeplab_keras import files
    from deeplab_keras import models
    from deeplab_keras.weights import cache
    from deeplab_keras.weights import specs

    trained = keras.saving.load_model(_MODEL.value, compile=False, safe_mode=True)
    config = trained.get_config()
    net = type(trained).from_config(config)
    net.set_weights(trained.get_weights())
    model = models.MSC(net, scales=(_INPUT_SCALE.value,)) if _INPUT_SCALE.value != 1.0 else net
    folder = os.path.join(ROOT, "deeplab_keras", "assets", "models", _NAME.value)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "weights.h5")
    stub = specs.WeightRecord(
        name=_NAME.value, summary="", architecture=type(net).__name__, arch_kwargs={},
        num_classes=int(config["num_classes"]), class_names=(), palette="voc",
        preprocessing=None, metrics=(), urls=(), file_format="bundled-h5",
        converter="deeplab_keras_h5", license="", paper="", num_params=0)
    digest = cache.write_converted_weights(model, path, stub, storage=_STORAGE.value)
    os.unlink(path + ".sha256")  # the record pins the hash
    stages = [stage_record(s) for s in _STAGES.value]
    evaluation_path = os.path.join(folder, "evaluation.json")
    previous = {}
    if os.path.exists(evaluation_path):
        with open(evaluation_path, encoding="utf-8") as f:
            previous = json.load(f)
    training = {"stages": stages, "recipe": _RECIPE.value,
                "hardware": stages[-1]["hardware"] if stages else "unknown",
                "software": ", ".join(f"{k} {v}" for k, v in stages[-1]["software"].items())
                if stages else "unknown"}
    payload = {**{k: v for k, v in previous.items() if k not in ("results", "crf_search",
                                                                "float16_check")},
               "model": _NAME.value, "weights_sha256": digest, "training": training}
    files.write_json_atomic(evaluation_path, payload)
    arch_kwargs = {k: v for k, v in config.items()
                   if k not in ("name", "trainable", "num_classes", "backbone", "dtype")}
    print(f"Wrote {path}: {os.path.getsize(path):,} bytes, sha256 {digest}")
    print(f"Parameters: {model.count_params():,}; input scale {_INPUT_SCALE.value}")
    print(f"Architecture: {type(net).__name__}, config without backbone: {arch_kwargs}")
    print(f"Backbone config: {config['backbone']['config']}")
    print(f"Wrote {evaluation_path} (training record of {len(stages)} stage(s)); now run "
          f"zoo/evaluate_camvid.py --name {_NAME.value}")
    return 0


if __name__ == "__main__":
    app.run(main)
