"""Trains a DeepLabV3+ from scratch on CamVid train on a lent GPU, with JAX (issue 18).

Runs under `KERAS_BACKEND=jax` and never imports TensorFlow (the device has none): the model,
loss, schedule, optimizer and confusion maths come from `deeplab_keras`, whose models, layers,
losses and data decoding use `keras.ops`, numpy and Pillow only. The recipe:

* data: the pack of `zoo/camvid_gpu/pack_data.py` (CamVid SegNet layout, JPEG-95 frames, PNG
  labels, void -> ignore 255), every train and val frame decoded once into device memory;
* augmentation on the device (`device_augment.py`: jax.numpy inside the jitted step, so the GPU
  is never starved): random scale in `--scale_range` (bilinear image, nearest labels), random
  crop of `--crop_size` (mean-pixel / ignore padding where the scaled frame is smaller),
  left-right flip;
* DeepLabV3+ (output stride 16) on a ResNet-50-layout encoder (`resnet50_v1_5`, bottleneck widths
  `--width * (1, 2, 4, 8)`), trained from random weights;
* loss: `SegmentationCrossEntropy` (ignore 255) with sqrt median-frequency class weights
  (`deeplab_keras.data.median_frequency_weights` on the train masks, square-rooted);
* optimizer: `deeplab_keras.train.make_optimizer("adamw")` at `--learning_rate` with the
  `deeplab_keras.train.PolyDecay` schedule over the run: over `--steps` steps, or, with
  `--steps 0`, over the wall-clock budget `--minutes` (progress = elapsed / budget, so the
  rate reaches 0 when the time is up whatever the GPU's speed);
* selection on val only: every `--eval_every` steps (and at the end) the mIoU of all val
  frames at full 360x480 resolution; the best one's weights are kept (val is never trained on).

Outputs under `--output_dir` (the device's `$OUT`; at most 8 files come back, each <= 16 MiB):

* `best.weights-K-of-N.h5`: the best-val weights in the package's converted-weights h5 format
  (`deeplab_keras.weights.cache`), float16 storage with batch-norm statistics in float32, split
  into shards of at most `--shard_mib` MiB (`shards.py`; written anew on each new best, so a
  run cut short still returns its best so far);
* `train_log.json`: flags, architecture arguments, class weights, the loss/learning-rate curve
  and every evaluation (val mIoU, per-class IoU), the best step, the float16 check (best weights
  rounded to float16 storage, scored on val) and the hardware/software;
* `train_log.txt`: the same, compact, one line per event;
* `probe.npz`: the first val frame and the logits of the best weights, as stored (float16), on
  it (`finish_bundle.py` checks that TensorFlow gives the same);
* `curves.png` (when matplotlib is installed): loss and val mIoU against steps.

Usage (on the device, through `zoo/camvid_gpu/run_on_device.sh`; by hand here at tiny sizes):
    KERAS_BACKEND=jax python3 zoo/camvid_gpu/train_on_device.py --output_dir $OUT
    KERAS_BACKEND=jax python3 zoo/camvid_gpu/train_on_device.py --data_dir /tmp/pack \\
        --output_dir /tmp/out --steps 2 --crop_size 64 --batch_size 2 --width 4 --depths 1,1,1,1 \\
        --aspp_filters 8 --decoder_filters 8 --low_level_filters 8 --eval_every 1 \\
        --precision float32
"""

import argparse
import concurrent.futures
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KERAS_BACKEND", "jax")

MIB = 1024 * 1024


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", default=os.path.join(ROOT, ".camvid_pack"),
                   help="CamVid in the SegNet layout (the pack of pack_data.py).")
    p.add_argument("--output_dir", default=os.environ.get("OUT") or os.path.join(
        ROOT, "runs", "camvid_gpu"), help="Where the outputs go (default $OUT).")
    p.add_argument("--minutes", type=float, default=4.0,
                   help="Training wall-clock budget (periodic evaluations included, compilation "
                        "excluded) when --steps is 0; the poly schedule spans it.")
    p.add_argument("--deadline_minutes", type=float, default=6.5,
                   help="Hard cap on the whole script: training is shortened (schedule included) "
                        "so that the final evaluation and the saving fit before it.")
    p.add_argument("--reserve_seconds", type=float, default=45.0,
                   help="Time kept for the final evaluation, the float16 check and the saving.")
    p.add_argument("--steps", type=int, default=0,
                   help="Fixed number of steps (the schedule spans them); 0: the time budget.")
    p.add_argument("--eval_every", type=int, default=500, help="Val evaluation every N steps.")
    p.add_argument("--log_every", type=int, default=50, help="Loss read back every N steps.")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--eval_batch_size", type=int, default=16)
    p.add_argument("--crop_size", default="352", help="Crop 'S' or 'H,W'.")
    p.add_argument("--scale_range", default="0.5,2.0", help="Random scale 'low,high'.")
    p.add_argument("--learning_rate", type=float, default=2e-3)
    p.add_argument("--weight_decay", type=float, default=1e-4,
                   help="AdamW's decoupled weight decay (Keras: w -= lr * wd * w).")
    p.add_argument("--poly_power", type=float, default=0.9)
    p.add_argument("--warmup_steps", type=int, default=0,
                   help="Linear warm-up (PolyDecay's), in steps (with --steps) or in schedule "
                        "thousandths of the time budget (without).")
    p.add_argument("--class_weights", default="sqrt_median_frequency",
                   choices=("sqrt_median_frequency", "median_frequency", "none"))
    p.add_argument("--backbone", default="resnet50_v1_5")
    p.add_argument("--width", type=int, default=40,
                   help="Bottleneck width of the first stage (64 is ResNet-50; 40 gives ~19M "
                        "parameters with --aspp_filters 224).")
    p.add_argument("--depths", default="3,4,6,3", help="Units per stage (ResNet-50: 3,4,6,3).")
    p.add_argument("--stem_filters", type=int, default=64)
    p.add_argument("--output_stride", type=int, default=16)
    p.add_argument("--aspp_filters", type=int, default=224)
    p.add_argument("--decoder_filters", type=int, default=256)
    p.add_argument("--low_level_filters", type=int, default=48)
    p.add_argument("--precision", default="mixed_bfloat16",
                   choices=("mixed_bfloat16", "float32"),
                   help="Keras dtype policy of the model (variables stay float32).")
    p.add_argument("--max_train_images", type=int, default=0, help="First N train frames only.")
    p.add_argument("--max_val_images", type=int, default=0, help="First N val frames only.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard_mib", type=float, default=15.0, help="Largest weights shard (MiB).")
    p.add_argument("--threads", type=int, default=16, help="Decoding threads.")
    p.add_argument("--max_files", type=int, default=7,
                   help="Files this script may leave in --output_dir (the device returns 8; "
                        "run_on_device.sh adds run.log): curves.png is skipped beyond it.")
    args = p.parse_args(argv)
    args.crop_size = _pair(args.crop_size, int, "crop_size")
    args.scale_range = _pair(args.scale_range, float, "scale_range")
    args.depths = tuple(int(d) for d in args.depths.split(","))
    if not 0 < args.scale_range[0] <= args.scale_range[1]:
        p.error(f"--scale_range must be 0 < low <= high; received {args.scale_range}")
    if args.steps < 0 or args.minutes <= 0 or args.eval_every < 1 or args.log_every < 1:
        p.error("--steps >= 0, --minutes > 0, --eval_every >= 1 and --log_every >= 1")
    return args


def _pair(text, kind, name):
    values = [kind(v) for v in str(text).split(",")]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise SystemExit(f"--{name} needs one or two values; received {text!r}")
    return tuple(values)


def architecture(args, num_classes):
    """Constructor arguments of `deeplab_keras.models.DeepLabV3Plus` (saved in the log, used by
    finish_bundle.py and by the registry record)."""
    w = args.width
    return dict(backbone=args.backbone, output_stride=args.output_stride,
                num_classes=num_classes, aspp_filters=args.aspp_filters,
                decoder_filters=args.decoder_filters, low_level_filters=args.low_level_filters,
                backbone_kwargs=dict(depths=list(args.depths), widths=[w, 2 * w, 4 * w, 8 * w],
                                     stem_filters=args.stem_filters))


class Log:
    """`train_log.json` (rewritten atomically after each event) and `train_log.txt` lines."""

    def __init__(self, folder, payload):
        self.folder, self.payload = folder, payload
        self.text = open(os.path.join(folder, "train_log.txt"), "a", encoding="utf-8")

    def line(self, message):
        print(message, flush=True)
        self.text.write(message + "\n")
        self.text.flush()

    def save(self):
        from deeplab_keras import files

        files.write_json_atomic(os.path.join(self.folder, "train_log.json"), self.payload)


def load_split(data_dir, split, limit, threads):
    """`(examples, images uint8 [N, H, W, 3], masks uint8 [N, H, W])` of one split."""
    import numpy as np

    from deeplab_keras import data

    layout = data.get_layout("camvid")
    examples = data.list_examples(layout, data_dir, split)
    if limit:
        examples = examples[:limit]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        pairs = list(pool.map(lambda e: data.load_example(e, layout), examples))
    shapes = {image.shape for image, _ in pairs}
    if len(shapes) != 1:
        raise SystemExit(f"{split}: frames of several sizes {sorted(shapes)}; CamVid is 360x480.")
    return (examples, np.stack([image for image, _ in pairs]),
            np.stack([mask for _, mask in pairs]))


def class_weights(kind, examples):
    import numpy as np

    from deeplab_keras import data

    if kind == "none":
        return None
    weights = np.asarray(data.median_frequency_weights(examples, data.get_layout("camvid"),
                                                       progress=False))
    return [float(w) for w in (np.sqrt(weights) if kind.startswith("sqrt") else weights)]


def save_curves(folder, payload):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    curve, evals = payload["curve"], payload["evaluations"]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot([c["step"] for c in curve], [c["loss"] for c in curve])
    ax[0].set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
    ax[1].plot([e["step"] for e in evals], [100 * e["val_miou"] for e in evals], "o-")
    ax[1].set(xlabel="step", ylabel="val mIoU (%)", title="CamVid val (101 frames, 360x480)")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(folder, "curves.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np
    import shards
    from device_augment import IGNORE
    from device_augment import make_augment

    from deeplab_keras import models
    from deeplab_keras import train
    from deeplab_keras.data.classes import CAMVID_CLASSES
    from deeplab_keras.evaluation.confusion import iou_from_confusion
    from deeplab_keras.evaluation.confusion import mean_of_present

    if keras.backend.backend() != "jax":
        raise SystemExit(f"train_on_device.py runs on JAX; KERAS_BACKEND is "
                         f"{keras.backend.backend()!r}.")
    os.makedirs(args.output_dir, exist_ok=True)
    num_classes = len(CAMVID_CLASSES)
    arch = architecture(args, num_classes)
    device = jax.devices()[0]
    payload = {
        "flags": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "architecture": "DeepLabV3Plus", "arch_kwargs": arch,
        "hardware": f"{device.platform}: {getattr(device, 'device_kind', '?')} "
                    f"x{jax.device_count()}; {os.cpu_count()} CPU cores",
        "software": {"python": platform.python_version(), "jax": jax.__version__,
                     "keras": keras.__version__, "numpy": np.__version__},
        "curve": [], "evaluations": [], "best": None, "status": "starting"}
    log = Log(args.output_dir, payload)
    log.line(f"[setup] {payload['hardware']}; jax {jax.__version__}, keras {keras.__version__}")

    train_examples, train_images, train_masks = load_split(
        args.data_dir, "train", args.max_train_images, args.threads)
    _, val_images, val_masks = load_split(args.data_dir, "val", args.max_val_images, args.threads)
    weights = class_weights(args.class_weights, train_examples)
    payload.update(train_images=len(train_images), val_images=len(val_images),
                   frame_size=list(train_images.shape[1:3]), class_weights=weights)
    log.line(f"[data] train {train_images.shape}, val {val_images.shape} decoded in "
             f"{time.perf_counter() - start:.1f} s; class weights ({args.class_weights}): "
             f"{[round(w, 2) for w in weights] if weights else None}")

    model = models.DeepLabV3Plus(dtype=args.precision, **arch)
    payload["num_params"] = int(model.count_params())
    optimizer = train.make_optimizer("adamw", learning_rate=float(args.learning_rate),
                                     weight_decay=args.weight_decay)
    optimizer.build(model.trainable_variables)
    lr_index = [i for i, v in enumerate(optimizer.variables) if v.name == "learning_rate"]
    if len(lr_index) != 1:
        raise SystemExit("the optimizer has no single 'learning_rate' variable to feed.")
    lr_index = lr_index[0]
    loss_fn = train.SegmentationCrossEntropy(ignore_label=IGNORE, class_weights=weights,
                                             num_classes=num_classes)
    resolution = args.steps if args.steps else 1000
    schedule = train.PolyDecay(args.learning_rate, total_steps=resolution,
                               power=args.poly_power, warmup_steps=args.warmup_steps)
    lr_table = np.asarray(schedule(np.arange(resolution + 1)), np.float32)
    log.line(f"[model] DeepLabV3Plus {arch}: {payload['num_params']:,} parameters, "
             f"{args.precision}")

    augment = make_augment(args.batch_size, args.crop_size, args.scale_range)

    def train_step(trainable, non_trainable, opt_vars, images, masks, key, step, lr):
        x, y = augment(images, masks, jax.random.fold_in(key, step))

        def compute_loss(tv):
            logits, ntv = model.stateless_call(tv, non_trainable, x, training=True)
            return loss_fn(y, logits), ntv

        (loss, non_trainable), grads = jax.value_and_grad(compute_loss, has_aux=True)(trainable)
        opt_vars = list(opt_vars)
        opt_vars[lr_index] = lr.astype(opt_vars[lr_index].dtype)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return trainable, non_trainable, opt_vars, loss

    def eval_step(trainable, non_trainable, images, masks):
        logits, _ = model.stateless_call(trainable, non_trainable, images.astype(jnp.float32),
                                         training=False)
        pred = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        labels = masks.astype(jnp.int32)
        index = jnp.where(labels != IGNORE, labels * num_classes + pred, num_classes ** 2)
        counts = jnp.bincount(index.reshape(-1), length=num_classes ** 2 + 1)
        return counts[:-1].reshape(num_classes, num_classes), logits[0]

    state = ([v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    d_train_images, d_train_masks = jax.device_put(train_images), jax.device_put(train_masks)
    eb = args.eval_batch_size
    pad = (-len(val_images)) % eb
    d_val_images = jax.device_put(np.concatenate(
        [val_images, np.zeros((pad,) + val_images.shape[1:], np.uint8)]))
    d_val_masks = jax.device_put(np.concatenate(
        [val_masks, np.full((pad,) + val_masks.shape[1:], IGNORE, np.uint8)]))
    base_key = jax.random.key(args.seed)

    t = time.perf_counter()
    jit_train = jax.jit(train_step, donate_argnums=(0, 1, 2)).lower(
        *state, d_train_images, d_train_masks, base_key, jnp.int32(0), jnp.float32(0)).compile()
    jit_eval = jax.jit(eval_step).lower(
        state[0], state[1], d_val_images[:eb], d_val_masks[:eb]).compile()
    payload["compile_seconds"] = round(time.perf_counter() - t, 1)
    log.line(f"[compile] train and eval steps in {payload['compile_seconds']} s")

    def evaluate(trainable, non_trainable):
        confusion, first_logits = jnp.zeros((num_classes, num_classes), jnp.int32), None
        for i in range(0, len(d_val_images), eb):
            counts, logits = jit_eval(trainable, non_trainable, d_val_images[i:i + eb],
                                      d_val_masks[i:i + eb])
            confusion = confusion + counts
            first_logits = logits if first_logits is None else first_logits
        confusion = np.asarray(confusion)
        per_class = iou_from_confusion(confusion)
        return mean_of_present(per_class), per_class, confusion, first_logits

    best = {"miou": -1.0, "step": None, "trainable": None, "non_trainable": None}
    shard_bytes = int(args.shard_mib * MIB)

    def assign(trainable, non_trainable):
        for variable, value in zip(model.trainable_variables, trainable):
            variable.assign(value)
        for variable, value in zip(model.non_trainable_variables, non_trainable):
            variable.assign(value)

    def save_best(step, miou):
        assign(best["trainable"], best["non_trainable"])
        names = shards.write_shards(args.output_dir, model.weights, "camvid_gpu_best",
                                    num_classes, shard_bytes)
        payload["best"] = {"step": step, "val_miou": miou, "files": names}

    def run_eval(step, train_state, elapsed, reason):
        t0 = time.perf_counter()
        miou, per_class, _, _ = evaluate(train_state[0], train_state[1])
        record = {"step": step, "val_miou": miou, "train_seconds": round(elapsed, 1),
                  "per_class_iou": [None if np.isnan(v) else float(v) for v in per_class],
                  "reason": reason}
        new_best = miou > best["miou"]
        if new_best:
            best.update(miou=miou, step=step,
                        trainable=[jnp.copy(v) for v in train_state[0]],
                        non_trainable=[jnp.copy(v) for v in train_state[1]])
            save_best(step, miou)
        record["eval_seconds"] = round(time.perf_counter() - t0, 2)
        payload["evaluations"].append(record)
        log.save()
        log.line(f"[eval] step {step}: val mIoU {100 * miou:.2f}"
                 f"{' (best)' if new_best else ''}; {record['eval_seconds']} s")
        return time.perf_counter() - t0

    deadline = start + 60.0 * args.deadline_minutes
    train_start = time.perf_counter()
    budget = min(60.0 * args.minutes, deadline - train_start - args.reserve_seconds)
    if budget <= 0:
        raise SystemExit(f"no time left to train before the deadline ({args.deadline_minutes} "
                         "min): raise --deadline_minutes or lower --reserve_seconds.")
    payload.update(status="training", train_budget_seconds=round(budget, 1))
    log.line(f"[train] budget {budget:.0f} s" + (f", {args.steps} steps" if args.steps else
                                                  " (the poly schedule spans it)"))
    step, last_eval_step, stopped_by, images_seen = 0, 0, None, 0
    window_start, window_steps = time.perf_counter(), 0
    while True:
        elapsed = time.perf_counter() - train_start
        if args.steps:
            if step >= args.steps:
                stopped_by = "steps"
                break
            if elapsed >= budget:
                stopped_by = "deadline"
                break
            position = step
        else:
            if elapsed >= budget:
                stopped_by = "time budget"
                break
            position = min(int(resolution * elapsed / budget), resolution)
        lr = lr_table[position]
        *state, loss = jit_train(*state, d_train_images, d_train_masks, base_key,
                                 jnp.int32(step), jnp.float32(lr))
        step += 1
        images_seen += args.batch_size
        window_steps += 1
        if step % args.log_every == 0 or step == 1 or step == args.steps:
            loss_value = float(loss)  # waits for the step: bounds the queue of async steps
            now = time.perf_counter()
            rate = window_steps * args.batch_size / max(now - window_start, 1e-9)
            window_start, window_steps = now, 0
            payload["curve"].append({"step": step, "loss": loss_value, "lr": float(lr),
                                     "train_seconds": round(now - train_start, 2),
                                     "images_per_second": round(rate, 1)})
            if not np.isfinite(loss_value):
                stopped_by = "non-finite loss"
                log.line(f"[train] step {step}: loss {loss_value}; stopping")
                break
            if step % (args.log_every * 10) == 0 or step == 1:
                log.line(f"[train] step {step}: loss {loss_value:.4f}, lr {lr:.2e}, "
                         f"{rate:.0f} images/s, {now - train_start:.0f} s")
        if step % args.eval_every == 0:
            run_eval(step, state, time.perf_counter() - train_start, "every")
            last_eval_step = step
    train_seconds = time.perf_counter() - train_start
    payload.update(steps=step, stopped_by=stopped_by, train_seconds=round(train_seconds, 1),
                   epochs=round(images_seen / len(train_images), 2),
                   images_per_second=round(images_seen / max(train_seconds, 1e-9), 1))
    log.line(f"[train] stopped by {stopped_by} at step {step} after {train_seconds:.0f} s "
             f"({payload['epochs']} epochs, {payload['images_per_second']} images/s)")
    if step and last_eval_step != step:
        run_eval(step, state, train_seconds, "final")
    if best["trainable"] is None:
        raise SystemExit("no evaluation ran: nothing to save.")

    # The float16 check and the probe: the best weights read back from the shards saved
    # (float16, BN statistics float32), by variable path.
    stored = shards.read_shards(args.output_dir, payload["best"]["files"])
    for variable in model.weights:
        variable.assign(stored.pop(variable.path).astype(variable.dtype))
    if stored:
        raise SystemExit(f"the shards hold variables the model lacks: {sorted(stored)[:3]}")
    f16_trainable = [v.value for v in model.trainable_variables]
    f16_non_trainable = [v.value for v in model.non_trainable_variables]
    miou16, per_class16, confusion16, probe_logits = evaluate(f16_trainable, f16_non_trainable)
    payload["float16_check"] = {
        "val_miou_float32_weights": best["miou"], "val_miou_float16_weights": miou16,
        "per_class_iou_float16_weights": [None if np.isnan(v) else float(v)
                                          for v in per_class16],
        "confusion_float16_weights": confusion16.tolist(), "compute": args.precision}
    log.line(f"[float16] best step {best['step']}: val mIoU {100 * best['miou']:.2f} with its "
             f"float32 weights, {100 * miou16:.2f} with them stored as float16")
    np.savez_compressed(os.path.join(args.output_dir, "probe.npz"), image=val_images[0],
                        logits=np.asarray(probe_logits, np.float32), precision=args.precision,
                        backend="jax", platform=device.platform)
    payload["tensorflow_imported"] = sys.modules.get("tensorflow") is not None
    payload["wall_seconds"] = round(time.perf_counter() - start, 1)
    payload["status"] = "done"
    if len(payload["best"]["files"]) + 4 <= args.max_files:
        if save_curves(args.output_dir, payload):
            payload["curves"] = "curves.png"
    else:
        log.line(f"[done] no curves.png: {len(payload['best']['files'])} weight shards + 3 "
                 f"files already make --max_files {args.max_files} with it")
    log.save()
    log.line(f"[done] best val mIoU {100 * best['miou']:.2f} at step {best['step']} "
             f"({', '.join(payload['best']['files'])}); {payload['wall_seconds']} s in all; "
             f"TensorFlow imported: {payload['tensorflow_imported']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
