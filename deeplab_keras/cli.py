"""`deeplab-keras train | evaluate | predict`: the command line (absl flags).

Examples:

    deeplab-keras train --dataset camvid --data_dir ../shared/data/camvid \\
        --model deeplabv3plus_mobilenetv2 --crop_size 180,240 --scale_range 0.375,0.75 \\
        --batch_size 8 --steps 3000 --output_dir runs/camvid
    deeplab-keras evaluate --model runs/camvid/model.keras --dataset camvid \\
        --data_dir ../shared/data/camvid --split val --scales 0.5
    deeplab-keras predict --model runs/camvid/model.keras --images "photos/*.jpg" \\
        --output_dir predictions --crf deeplab_resnet101_voc
    deeplab-keras predict --model deeplabv3plus_mobilenetv2_camvid --images "photos/*.jpg" \\
        --crf model        # the bundled CamVid model and its tuned CRF, offline

`--backend jax` (or KERAS_BACKEND) picks the Keras backend; training then uses the
TensorFlow-free input pipeline (`--input pydataset`).
"""

import functools
import glob
import os
import sys
import time

from absl import app
from absl import flags

from deeplab_keras.files import atomic_path
from deeplab_keras.files import write_json_atomic

COMMANDS = ("train", "evaluate", "predict")
# A private flag registry: the CLI's flags (--model, --output_dir, ...) never clash with flags
# another absl program (or `deeplab_keras.demo`) defines in the same process.
FLAGS = flags.FlagValues()
_string = functools.partial(flags.DEFINE_string, flag_values=FLAGS)
_integer = functools.partial(flags.DEFINE_integer, flag_values=FLAGS)
_float = functools.partial(flags.DEFINE_float, flag_values=FLAGS)
_bool = functools.partial(flags.DEFINE_bool, flag_values=FLAGS)
_enum = functools.partial(flags.DEFINE_enum, flag_values=FLAGS)

_BACKEND = _enum("backend", None, ["tensorflow", "jax", "torch"],
                             "Keras backend (default: $KERAS_BACKEND or tensorflow).")
_MODEL = _string(
    "model", "deeplabv3plus_mobilenetv2",
    "Architecture name (see deeplab_keras.models.list_architectures()) to train from scratch, "
    "a registry name (deeplab_keras.list_models(), e.g. deeplabv3plus_mobilenetv2_camvid) "
    "or a path to a saved .keras model.")
_DATASET = _string("dataset", "camvid", "Dataset layout (deeplab_keras.data).")
_DATA_DIR = _string("data_dir", None, "Root folder of the dataset.")
_SPLIT = _string("split", None, "Split to evaluate (default: val) / train on "
                             "(default: train).")
_NUM_CLASSES = _integer("num_classes", None, "Default: the layout's.")
_OUTPUT_DIR = _string("output_dir", "runs/deeplab", "Checkpoints, logs, pictures.")
_CROP = _string("crop_size", "513,513", "Training crop, 'height,width'.")
_SCALE_RANGE = _string("scale_range", "0.5,2.0", "Random scale range 'min,max'.")
_BATCH = _integer("batch_size", 8, "Global batch size.")
_STEPS = _integer("steps", 30000, "Training steps.")
_LR = _float("learning_rate", 0.007, "Base learning rate (poly decay, power 0.9).")
_OPTIMIZER = _enum("optimizer", "sgd", ["sgd", "adamw"],
                   "Optimizer: momentum SGD (the papers) or AdamW.")
_MOMENTUM = _float("momentum", 0.9, "SGD momentum.")
_WEIGHT_DECAY = _float("weight_decay", 1e-4, "Weight decay.")
_WARMUP = _integer("warmup_steps", 0, "Linear learning-rate warm-up steps.")
_HEAD_LR = _float("head_lr_multiplier", 1.0,
                              "Learning-rate multiplier of the head over the backbone (the "
                              "paper uses 10 when the backbone is pretrained).")
_CLASS_WEIGHTS = _enum("class_weights", "none", ["none", "median_frequency"],
                                   "Loss weights per class, from the training masks.")
_FREEZE_BN = _bool("freeze_bn", False, "Freeze batch-norm statistics.")
_MIXED = _enum("mixed_precision", "off", ["off", "mixed_float16", "mixed_bfloat16"],
                           "Keras dtype policy (logits stay float32).")
_STRATEGY = _string("strategy", "off", "off | one_device | mirrored | "
                                "multi_worker_mirrored | tpu | data_parallel (JAX).")
_INPUT = _enum("input", None, ["tfdata", "pydataset"],
                           "Input pipeline (default: tfdata with TensorFlow, else pydataset).")
_CKPT_EVERY = _integer("checkpoint_every", 200, "Steps between checkpoints.")
_EVAL_EVERY = _integer("eval_every", 1, "Validate every N checkpoints (0: never).")
_SEED = _integer("seed", 0, "Seed of weights, data order and augmentation.")
_SCALES = _string("scales", "1.0", "Evaluation/prediction scales, e.g. "
                              "'0.5,0.75,1.0,1.25'.")
_FLIP = _bool("flip", False, "Add horizontally flipped inputs at evaluation.")
_SLIDING = _string("sliding_window", None, "Tile size 'h,w' for sliding-window "
                               "evaluation of large images.")
_IMAGES = _string("images", None, "predict: a glob of images.")
_CRF = _string("crf", None, "predict: refine the masks with the dense CRF: 'model' (the "
                            "parameters released with a registry model's weights) or a "
                            "DenseCRF preset name.")
_MAX_IMAGES = _integer("max_images", None, "evaluate: only the first N images "
                                   "(reported as such).")


_COMMAND_LINE = None


def run_info():
    """What reproduces a run: command line, flag values, software and hardware."""
    import platform
    import shlex

    import keras

    versions = {"python": platform.python_version(), "keras": keras.__version__,
                "backend": keras.backend.backend()}
    for module in ("tensorflow", "jax"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", "?")
    return {"command": shlex.join(_COMMAND_LINE) if _COMMAND_LINE else None,
            "flags": {name: FLAGS[name].value for name in sorted(FLAGS)},
            "software": versions,
            "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores"
                        + _accelerators()}


def _accelerators():
    import keras

    try:
        if keras.backend.backend() == "jax":
            import jax

            devices = [d.device_kind for d in jax.devices() if d.platform != "cpu"]
        elif keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            devices = [d.name for d in tf.config.list_physical_devices("GPU")]
        else:
            devices = []
    except Exception:  # noqa: BLE001 - informational only
        devices = []
    return f", accelerators: {', '.join(devices)}" if devices else ", no GPU"


def _pair(text, name, cast=int):
    try:
        values = tuple(cast(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 2:
        raise app.UsageError(f"--{name} must be two comma-separated numbers; received {text!r}.")
    return values


def _floats(text, name):
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as err:
        raise app.UsageError(f"--{name} must be comma-separated numbers; received "
                             f"{text!r}.") from err


def _require_data_dir():
    if not _DATA_DIR.value:
        raise app.UsageError("--data_dir is required (the dataset's root folder).")
    if not os.path.isdir(_DATA_DIR.value):
        raise app.UsageError(f"--data_dir {_DATA_DIR.value!r} is not a folder.")
    return _DATA_DIR.value


def _layout():
    from deeplab_keras import data

    return data.get_layout(_DATASET.value)


def _load_or_build_model(num_classes):
    from deeplab_keras.models import factory
    from deeplab_keras.weights import loading

    if _MODEL.value.endswith(".keras"):
        if not os.path.isfile(_MODEL.value):
            raise app.UsageError(f"--model {_MODEL.value!r}: no such file.")
        return loading.load_keras_file(_MODEL.value, compile=False)
    if _is_registry_name(_MODEL.value):
        return loading.load_model(_MODEL.value, num_classes=num_classes)
    return factory.build(_MODEL.value, num_classes)


def _is_registry_name(name):
    from deeplab_keras.weights import registry

    return name in registry.list_models()


def _input_kind():
    import keras

    if _INPUT.value:
        return _INPUT.value
    return "tfdata" if keras.backend.backend() == "tensorflow" else "pydataset"


def train(output_dir):
    """Trains `--model` on `--dataset`; writes checkpoints, TensorBoard logs, model.keras."""
    import keras

    from deeplab_keras import data
    from deeplab_keras import train as train_lib
    from deeplab_keras.train import callbacks as callbacks_lib
    from deeplab_keras.train import distribute
    from deeplab_keras.train import trainer

    crop = _pair(_CROP.value, "crop_size")
    scale_range = _pair(_SCALE_RANGE.value, "scale_range", float)
    eval_scales = _floats(_SCALES.value, "scales")
    data_dir = _require_data_dir()
    layout = _layout()
    num_classes = _NUM_CLASSES.value or layout.num_classes
    train_examples = data.list_examples(layout, data_dir, _SPLIT.value or "train")
    val_examples = data.list_examples(layout, data_dir, "val") if _EVAL_EVERY.value else []
    print(f"{len(train_examples)} training images, {len(val_examples)} validation images "
          f"({layout.name}, {num_classes} classes, ignore label {layout.ignore_label}).")
    if _MIXED.value != "off":
        keras.mixed_precision.set_dtype_policy(_MIXED.value)
    keras.utils.set_random_seed(_SEED.value)
    strategy = distribute.get_strategy(_STRATEGY.value)
    class_weights = None
    if _CLASS_WEIGHTS.value == "median_frequency":
        class_weights = data.median_frequency_weights(train_examples, layout, num_classes)
        print("Class weights (median frequency): "
              + ", ".join(f"{w:.2f}" for w in class_weights))

    kind = _input_kind()

    def dataset_fn(start_step, num_steps):
        kwargs = dict(batch_size=_BATCH.value, crop_size=crop, seed=_SEED.value,
                      scale_range=scale_range, start_step=start_step, num_steps=num_steps)
        if kind == "tfdata":
            return data.make_tf_dataset(train_examples, layout, **kwargs)
        return data.SegmentationPyDataset(train_examples, layout, **kwargs)

    with strategy.scope():
        model = _load_or_build_model(num_classes)
        if _FREEZE_BN.value:
            train_lib.freeze_batch_norm(model)
        schedule = train_lib.PolyDecay(_LR.value, _STEPS.value, warmup_steps=_WARMUP.value)
        optimizer = train_lib.make_optimizer(
            _OPTIMIZER.value, learning_rate=schedule, momentum=_MOMENTUM.value,
            weight_decay=_WEIGHT_DECAY.value, head_multiplier=_HEAD_LR.value, model=model)
        model.compile(
            optimizer=optimizer,
            loss=train_lib.SegmentationCrossEntropy(ignore_label=layout.ignore_label,
                                                    class_weights=class_weights,
                                                    num_classes=num_classes),
            metrics=[train_lib.MeanIoU(num_classes, ignore_label=layout.ignore_label)])
    print(f"{_MODEL.value}: {model.count_params():,} parameters; backend "
          f"{keras.backend.backend()}, input {kind}, strategy {_STRATEGY.value}.")

    extra = [callbacks_lib.TerminateOnNaNKeepLast()]
    log_dir = os.path.join(output_dir, "logs")
    extra += _tensorboard_callbacks(log_dir, val_examples, layout, num_classes, eval_scales)
    info = run_info()
    write_json_atomic(os.path.join(output_dir, "run.json"), info)
    start = time.time()
    trainer.fit(model, dataset_fn, total_steps=_STEPS.value,
                steps_per_checkpoint=_CKPT_EVERY.value,
                checkpoint_dir=os.path.join(output_dir, "checkpoints"), seed=_SEED.value,
                strategy=strategy, callbacks=extra, verbose=1)
    minutes = (time.time() - start) / 60
    path = os.path.join(output_dir, "model.keras")
    _atomic_save(model, path)
    print(f"Training took {minutes:.1f} min; saved {path}")
    write_json_atomic(os.path.join(output_dir, "run.json"),
                {**info, "train_minutes": round(minutes, 2), "steps": _STEPS.value})
    if val_examples:
        _report(model, val_examples, layout, num_classes, eval_scales, output_dir, "val",
                extra_info={"train_minutes": round(minutes, 2), "steps": _STEPS.value})
    return 0


def _tensorboard_callbacks(log_dir, val_examples, layout, num_classes, scales):
    from deeplab_keras.train import tensorboard

    return tensorboard.callbacks(log_dir, val_examples, layout, num_classes, scales=scales,
                                 every_n_epochs=_EVAL_EVERY.value)


def _atomic_save(model, path):
    with atomic_path(path) as tmp:
        model.save(tmp)


def _report(model, examples, layout, num_classes, scales, output_dir, split, extra_info=None):
    from deeplab_keras import data
    from deeplab_keras import evaluation

    sliding = _pair(_SLIDING.value, "sliding_window") if _SLIDING.value else None
    result = evaluation.evaluate(
        model, data.iterate_eval(examples, layout), num_classes=num_classes,
        ignore_label=layout.ignore_label, scales=scales, flip=_FLIP.value, crop_size=sliding,
        class_names=layout.class_names, num_examples=len(examples))
    print(result["table"] if "table" in result else result)
    per_class = {name: (None if value != value else float(value))  # NaN: class absent
                 for name, value in result["per_class_iou"].items()}
    summary = {"split": split, "num_images": result["num_images"],
               "miou": float(result["miou"]), "pixel_accuracy": float(result["pixel_accuracy"]),
               "per_class_iou": per_class, "scales": list(scales),
               "flip": _FLIP.value, "sliding_window": _SLIDING.value, "model": _MODEL.value}
    summary.update(extra_info or {})
    os.makedirs(output_dir, exist_ok=True)
    out = os.path.join(output_dir, f"metrics_{split}.json")
    write_json_atomic(out, summary)
    print(f"{split}: mIoU {100 * result['miou']:.2f} over {result['num_images']} images; "
          f"wrote {out}")
    return result


def evaluate(output_dir):
    """Evaluates `--model` (a .keras file) on `--split` (default val); prints per-class IoU."""
    from deeplab_keras import data

    data_dir = _require_data_dir()
    layout = _layout()
    num_classes = _NUM_CLASSES.value or layout.num_classes
    model = _load_or_build_model(num_classes)
    split = _SPLIT.value or "val"
    examples = data.list_examples(layout, data_dir, split)
    if _MAX_IMAGES.value:
        print(f"Evaluating only the first {_MAX_IMAGES.value} of {len(examples)} images.")
        examples = examples[:_MAX_IMAGES.value]
    _report(model, examples, layout, num_classes, _floats(_SCALES.value, "scales"), output_dir,
            split)
    return 0


def predict(output_dir):
    """Segments `--images` with `--model`; writes mask, overlay and panel PNGs."""
    from deeplab_keras.visualize import segment_and_save

    if not _IMAGES.value:
        raise app.UsageError("predict needs --images (a glob).")
    paths = sorted(glob.glob(_IMAGES.value))
    if not paths:
        raise app.UsageError(f"--images {_IMAGES.value!r} matched no files.")
    registry_model = _is_registry_name(_MODEL.value)
    if not _MODEL.value.endswith(".keras") and not registry_model:
        print(f"NOTE: --model {_MODEL.value!r} is an architecture name: RANDOM weights.")
    num_classes = _NUM_CLASSES.value
    if num_classes is None and not registry_model:
        num_classes = 11
    model = _load_or_build_model(num_classes)
    crf = True if _CRF.value == "model" else _CRF.value
    written = segment_and_save(model, paths, output_dir, crf=crf,
                               scales=_floats(_SCALES.value, "scales"), flip=_FLIP.value)
    print(f"Wrote {len(written)} PNGs to {os.path.abspath(output_dir)}")
    return 0


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        print(f"usage: deeplab-keras {{{'|'.join(COMMANDS)}}} [--flags]; "
              "`deeplab-keras train --help` lists the flags.", file=sys.stderr)
        return 2
    if len(argv) > 2:
        raise app.UsageError(f"Unexpected arguments {argv[2:]}; flags start with --.")
    return {"train": train, "evaluate": evaluate, "predict": predict}[argv[1]](
        _OUTPUT_DIR.value)


def _set_backend_from_argv(argv):
    for i, arg in enumerate(argv):
        value = None
        if arg.startswith("--backend="):
            value = arg.split("=", 1)[1]
        elif arg == "--backend" and i + 1 < len(argv):
            value = argv[i + 1]
        if value:
            if "keras" in sys.modules and os.environ.get("KERAS_BACKEND", value) != value:
                print("--backend must be chosen before Keras is imported.", file=sys.stderr)
            os.environ["KERAS_BACKEND"] = value


def run(argv=None):
    """Entry point of `deeplab-keras`; `argv` defaults to sys.argv. Returns the exit code."""
    argv = list(sys.argv if argv is None else argv)
    if any(a in ("-h", "--help", "--helpfull") for a in argv[1:]):
        print(__doc__)
        print(FLAGS.main_module_help() if hasattr(FLAGS, "main_module_help") else "")
        print(FLAGS.get_help())
        return 0
    _set_backend_from_argv(argv)
    global _COMMAND_LINE
    _COMMAND_LINE = ["deeplab-keras"] + argv[1:]
    FLAGS.unparse_flags()
    try:
        argv = FLAGS(argv)
    except flags.Error as err:
        print(f"deeplab-keras: {err}\nRun `deeplab-keras --help` for the flags.", file=sys.stderr)
        return 2
    try:
        return main(argv)
    except app.UsageError as err:
        print(f"deeplab-keras: {err}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as err:  # bad data or arguments, already explained
        print(f"deeplab-keras {argv[1] if len(argv) > 1 else ''}: error: {err}", file=sys.stderr)
        return 1


def main_entry():
    """Console-script entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main_entry()
