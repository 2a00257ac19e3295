"""`train`, `evaluate` and `predict`: what each command does once its flags are checked."""

import glob
import os
import time

from absl import app

from deeplab_keras.cli import dataset
from deeplab_keras.cli import flags as cli_flags
from deeplab_keras.cli import run_info
from deeplab_keras.files import atomic_path
from deeplab_keras.files import write_json_atomic


def load_or_build_model(num_classes, class_names=None, palette=None):
    """--model as a model: a `.keras` file, a registry entry or an architecture to build."""
    from deeplab_keras.models import factory
    from deeplab_keras.weights import loading
    from deeplab_keras.weights import registry

    name = cli_flags.MODEL.value
    weights = cli_flags.BACKBONE_WEIGHTS.value
    if name.endswith(".keras"):
        if not os.path.isfile(name):
            raise app.UsageError(f"--model {name!r}: no such file.")
        if weights:
            raise app.UsageError("--backbone_weights applies to architecture names, not to a "
                                 "saved .keras model.")
        return loading.load_keras_file(name, compile=False)
    names = dict(class_names=class_names, palette=palette) if class_names else {}
    if name in registry.list_models():
        return loading.load_model(name, num_classes=num_classes, weights=weights is None,
                                  backbone_weights=weights, **names)
    if weights:
        from deeplab_keras.weights import imagenet_backbones

        return imagenet_backbones.build_model(name, num_classes, backbone_weights=weights,
                                              **names)
    return factory.build(name, num_classes, **names)


def at_requested_precision(model):
    """The loaded model converted to --mixed_precision (evaluate and predict)."""
    from deeplab_keras.models.precision import with_dtype_policy

    policy = None if cli_flags.MIXED.value == "off" else cli_flags.MIXED.value
    if policy:
        print(f"Running under the {policy} dtype policy.")
    return with_dtype_policy(model, policy)


def check_flags(command):
    """Parses the command's value flags, so a bad value fails before Keras starts."""
    if command == "train":
        cli_flags.pair(cli_flags.CROP.value, "crop_size")
        cli_flags.scale_range()
    cli_flags.numbers(cli_flags.SCALES.value, "scales")
    if cli_flags.SLIDING.value:
        cli_flags.pair(cli_flags.SLIDING.value, "sliding_window")
    if command == "export":
        from deeplab_keras.cli import export_command

        export_command.check_flags()
        return
    if command == "predict":
        cli_flags.crf()
        cli_flags.class_names()
    else:
        dataset.layout()
        dataset.require_data_dir()


def _input_kind():
    import keras

    if cli_flags.INPUT.value:
        return cli_flags.INPUT.value
    return "tfdata" if keras.backend.backend() == "tensorflow" else "pydataset"


def train(output_dir):
    """Trains --model on --dataset; writes checkpoints, TensorBoard logs, model.keras."""
    import keras

    from deeplab_keras import data
    from deeplab_keras import train as train_lib
    from deeplab_keras.train import callbacks as callbacks_lib
    from deeplab_keras.train import distribute
    from deeplab_keras.train import tensorboard
    from deeplab_keras.train import trainer

    crop = cli_flags.pair(cli_flags.CROP.value, "crop_size")
    scale_range = cli_flags.scale_range()
    eval_scales = cli_flags.numbers(cli_flags.SCALES.value, "scales")
    layout = dataset.layout()
    split = cli_flags.SPLIT.value
    train_examples = dataset.examples(layout, split or "train", explicit=split is not None)
    val_examples = []
    if cli_flags.EVAL_EVERY.value and dataset.has_split(layout, "val"):
        val_examples = dataset.examples(layout, "val", explicit=True)
    num_classes = layout.num_classes
    print(f"{len(train_examples)} training images, {len(val_examples)} validation images "
          f"({layout.name}, {num_classes} classes: {', '.join(layout.class_names)}; ignore "
          f"label {layout.ignore_label}). Checking every image/mask pair:")
    counts = data.scan_examples(train_examples, layout, num_classes)
    if val_examples:
        data.scan_examples(val_examples, layout, num_classes)
    if cli_flags.MIXED.value != "off":
        keras.mixed_precision.set_dtype_policy(cli_flags.MIXED.value)
    keras.utils.set_random_seed(cli_flags.SEED.value)
    strategy = distribute.get_strategy(cli_flags.STRATEGY.value)
    class_weights = None
    if cli_flags.CLASS_WEIGHTS.value == "median_frequency":
        class_weights = data.median_frequency_weights(train_examples, layout, num_classes)
        print("Class weights (median frequency): "
              + ", ".join(f"{w:.2f}" for w in class_weights))
    del counts
    kind = _input_kind()
    batch, seed = cli_flags.BATCH.value, cli_flags.SEED.value

    def dataset_fn(start_step, num_steps):
        kwargs = dict(batch_size=batch, crop_size=crop, seed=seed, scale_range=scale_range,
                      start_step=start_step, num_steps=num_steps)
        if kind == "tfdata":
            return data.make_tf_dataset(train_examples, layout, **kwargs)
        return data.SegmentationPyDataset(train_examples, layout, **kwargs)

    with strategy.scope():
        model = load_or_build_model(num_classes, layout.class_names, layout.palette)
        if cli_flags.FREEZE_BN.value:
            train_lib.freeze_batch_norm(model)
        steps = cli_flags.STEPS.value
        schedule = train_lib.PolyDecay(cli_flags.LR.value, steps,
                                       warmup_steps=cli_flags.WARMUP.value)
        optimizer = train_lib.make_optimizer(
            cli_flags.OPTIMIZER.value, learning_rate=schedule, momentum=cli_flags.MOMENTUM.value,
            weight_decay=cli_flags.WEIGHT_DECAY.value,
            head_multiplier=cli_flags.HEAD_LR.value, model=model)
        model.compile(
            optimizer=optimizer,
            loss=train_lib.SegmentationCrossEntropy(ignore_label=layout.ignore_label,
                                                    class_weights=class_weights,
                                                    num_classes=num_classes),
            metrics=[train_lib.MeanIoU(num_classes, ignore_label=layout.ignore_label)])
    print(f"{cli_flags.MODEL.value}: {model.count_params():,} parameters; backend "
          f"{keras.backend.backend()}, input {kind}, strategy {cli_flags.STRATEGY.value}.")
    extra = [callbacks_lib.TerminateOnNaNKeepLast()]
    extra += tensorboard.callbacks(os.path.join(output_dir, "logs"), val_examples, layout,
                                   num_classes, scales=eval_scales,
                                   every_n_epochs=cli_flags.EVAL_EVERY.value)
    info = run_info.collect()
    write_json_atomic(os.path.join(output_dir, "run.json"), info)
    start = time.time()
    trainer.fit(model, dataset_fn, total_steps=steps,
                steps_per_checkpoint=cli_flags.CKPT_EVERY.value,
                checkpoint_dir=os.path.join(output_dir, "checkpoints"), seed=seed,
                strategy=strategy, callbacks=extra, verbose=1)
    minutes = (time.time() - start) / 60
    path = os.path.join(output_dir, "model.keras")
    with atomic_path(path) as tmp:
        model.save(tmp)
    print(f"Training took {minutes:.1f} min; saved {path} (with its {num_classes} class names "
          "and colours)")
    write_json_atomic(os.path.join(output_dir, "run.json"),
                      {**info, "train_minutes": round(minutes, 2), "steps": steps})
    if val_examples:
        report(model, val_examples, layout, eval_scales, output_dir, "val",
               extra_info={"train_minutes": round(minutes, 2), "steps": steps})
    return 0


def report(model, examples, layout, scales, output_dir, split, extra_info=None, found=None):
    """Evaluates, prints the per-class table and writes `metrics_<split>.json`."""
    from deeplab_keras import data
    from deeplab_keras import evaluation

    sliding = (cli_flags.pair(cli_flags.SLIDING.value, "sliding_window")
               if cli_flags.SLIDING.value else None)
    result = evaluation.evaluate(
        model, data.iterate_eval(examples, layout), num_classes=layout.num_classes,
        ignore_label=layout.ignore_label, scales=scales, flip=cli_flags.FLIP.value,
        crop_size=sliding, class_names=layout.class_names, num_examples=len(examples))
    print(result["table"])
    per_class = {name: (None if value != value else float(value))  # NaN: class absent
                 for name, value in result["per_class_iou"].items()}
    summary = {"split": split, "num_images": result["num_images"],
               "images_found": found if found is not None else len(examples),
               "miou": float(result["miou"]), "pixel_accuracy": float(result["pixel_accuracy"]),
               "per_class_iou": per_class, "scales": list(scales),
               "flip": cli_flags.FLIP.value, "sliding_window": cli_flags.SLIDING.value,
               "model": cli_flags.MODEL.value, **(extra_info or {})}
    out = os.path.join(output_dir, f"metrics_{split}.json")
    write_json_atomic(out, summary)
    print(f"{split}: mIoU {100 * result['miou']:.2f} over {result['num_images']} of "
          f"{summary['images_found']} images found; wrote {out}")
    return result


def evaluate(output_dir):
    """Evaluates --model on --split (default val); prints per-class IoU."""
    layout = dataset.layout()
    split = cli_flags.SPLIT.value
    examples = dataset.examples(layout, split or "val", explicit=split is not None)
    model = at_requested_precision(
        load_or_build_model(layout.num_classes, layout.class_names, layout.palette))
    found = len(examples)
    if cli_flags.MAX_IMAGES.value:
        print(f"Evaluating only the first {cli_flags.MAX_IMAGES.value} of {found} images.")
        examples = examples[:cli_flags.MAX_IMAGES.value]
    report(model, examples, layout, cli_flags.numbers(cli_flags.SCALES.value, "scales"),
           output_dir, split or "val", found=found)
    return 0


def predict(output_dir):
    """Segments --images with --model; writes mask, overlay and panel PNGs with a legend."""
    from deeplab_keras.visualize import segment_and_save
    from deeplab_keras.weights import registry

    if not cli_flags.IMAGES.value:
        raise app.UsageError("predict needs --images (a glob).")
    paths = sorted(glob.glob(cli_flags.IMAGES.value))
    if not paths:
        raise app.UsageError(f"--images {cli_flags.IMAGES.value!r} matched no files.")
    name = cli_flags.MODEL.value
    registry_model = name in registry.list_models()
    if not name.endswith(".keras") and not registry_model:
        print(f"NOTE: --model {name!r} is an architecture name: RANDOM weights.")
    names = cli_flags.class_names()
    num_classes = cli_flags.NUM_CLASSES.value or (len(names) if names else None)
    if num_classes is None and not registry_model and not name.endswith(".keras"):
        raise app.UsageError(f"--model {name!r} is an architecture: give --num_classes.")
    model = at_requested_precision(load_or_build_model(num_classes, names))
    import keras

    from deeplab_keras.inference import class_names_of

    model_names = class_names_of(model)
    print(f"{name}: {len(model_names)} classes ({', '.join(model_names)}); backend "
          f"{keras.backend.backend()}. Segmenting {len(paths)} image(s):")
    written = segment_and_save(model, paths, output_dir, crf=cli_flags.crf(),
                               scales=cli_flags.numbers(cli_flags.SCALES.value, "scales"),
                               flip=cli_flags.FLIP.value)
    print(f"Wrote {len(written)} PNGs to {os.path.abspath(output_dir)}")
    return 0


def export(output_dir):
    from deeplab_keras.cli import export_command

    return export_command.run()


COMMAND_FUNCTIONS = {"train": train, "evaluate": evaluate, "predict": predict, "export": export}

__all__ = ["COMMAND_FUNCTIONS", "check_flags", "evaluate", "export", "load_or_build_model",
           "predict", "report", "train"]
