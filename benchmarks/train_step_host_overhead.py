"""Host work per `train_on_batch` call on Keras' JAX backend (issue 17's training-step gap).

On the H200 ours stepped DeepLabV3-ResNet101 OS8 (bf16, batch 16, 513x513) at 138.5 ms per
`train_on_batch` call against torchvision's 116.1 ms per eager step (BENCHMARKS.md). Part of a
call is Python work on the host that a faster device does not shorten. This script measures it
on any machine, for the same model and optimizer as `benchmarks/train_step.py`:

* `train_on_batch` with the compiled step replaced by one that returns at once, so that only
  host work is left, split at the moment the real step would be dispatched: the work *before*
  (symbolic-build check, metric reset, collecting every variable's value, the data iterator)
  adds to every step; the work *after* (writing every variable back, converting the logs) runs
  while an asynchronous device (a GPU) is still computing the step, until the logs are read.
* two of those pieces on their own: `_get_jax_state` and `jax_state_sync`.

The model's size (variable count) sets the host work, not the image size, so a tiny input is
used. Timing `train_on_batch` against a bare jitted step directly is useless on a CPU: the step's
own run-to-run spread there (tens of ms) is larger than the difference. Each figure is the
median of `--reps` calls after `--warmup` calls.

Usage:

    KERAS_BACKEND=jax python benchmarks/train_step_host_overhead.py            # ResNet-101, 1 min
    KERAS_BACKEND=jax python benchmarks/train_step_host_overhead.py --smoke    # MobileNetV2

The last line printed is a JSON object (prefixed `RESULT_JSON `).
"""

import argparse
import json
import os
import statistics
import sys
import time

from inference import cpu_info
from inference import versions

IGNORE = 255
# Every kind of variable `train_on_batch` collects before the step and writes back after it.
STATE_KINDS = dict(trainable_variables=True, non_trainable_variables=True,
                   optimizer_variables=True, metrics_variables=True, purge_model_variables=False)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=17, help="Square input side (tiny on purpose).")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--smoke", action="store_true",
                   help="MobileNetV2 backbone and 5 repetitions, to test the code path.")
    return p.parse_args(argv)


def median_ms(fn, reps, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def host_work_ms(model, images, labels, reps, warmup):
    """(before, after) dispatch: medians of `train_on_batch` with a step that does nothing."""
    import jax

    state = model._get_jax_state(**STATE_KINDS)
    ready_logs, _ = model.train_function(state, iter([(images, labels, None)]))
    jax.block_until_ready(ready_logs)
    compiled, entered = model.train_function, []

    def no_device_step(jax_state, data):
        entered.append(time.perf_counter())
        next(data)
        return ready_logs, jax_state

    model.train_function = no_device_step
    calls = []
    try:
        for i in range(warmup + reps):
            t0 = time.perf_counter()
            model.train_on_batch(images, labels)
            t1 = time.perf_counter()
            if i >= warmup:
                calls.append((entered[-1] - t0, t1 - entered[-1]))
    finally:
        model.train_function = compiled
    return (1000 * statistics.median(c[0] for c in calls),
            1000 * statistics.median(c[1] for c in calls))


def main(argv=None):
    args = parse_args(argv)
    if os.environ.get("KERAS_BACKEND") != "jax":
        sys.exit("train_step_host_overhead.py measures Keras' JAX trainer: run it with "
                 "KERAS_BACKEND=jax.")
    import jax
    import keras
    import numpy as np

    import deeplab_keras

    if args.smoke:
        args.reps, args.warmup = min(args.reps, 5), 1
    keras.utils.set_random_seed(0)
    if args.precision == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    backbone = "mobilenetv2" if args.smoke else "resnet101_v1_5"
    model = deeplab_keras.models.DeepLabV3(backbone=backbone, output_stride=8, num_classes=21,
                                           head="torchvision")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=deeplab_keras.train.SegmentationCrossEntropy(ignore_label=IGNORE),
                  jit_compile=True)
    rng = np.random.RandomState(0)
    images = jax.device_put(rng.uniform(0, 255, (args.batch, args.size, args.size, 3))
                            .astype("float32"))
    labels = jax.device_put(rng.randint(0, 21, (args.batch, args.size, args.size))
                            .astype("int32"))
    model.train_on_batch(images, labels)  # builds and compiles the step

    before, after = host_work_ms(model, images, labels, args.reps, args.warmup)
    t_get = median_ms(lambda: model._get_jax_state(**STATE_KINDS), args.reps, args.warmup)

    def sync():
        model._jax_state_synced = False
        model.jax_state_sync()

    t_sync = median_ms(sync, args.reps, args.warmup)
    counts = {"trainable": len(model.trainable_variables),
              "non_trainable": len(model.non_trainable_variables),
              "optimizer": len(model.optimizer.variables),
              "metrics": len(model.metrics_variables)}
    result = {
        "machine": cpu_info(), "versions": versions(), "command": " ".join(sys.argv),
        "backbone": backbone, "precision": args.precision, "variables": counts,
        "host_before_dispatch_ms": before, "host_after_dispatch_ms": after,
        "get_jax_state_ms": t_get, "jax_state_sync_ms": t_sync,
    }
    print(f"{backbone} OS8, {args.precision}, {sum(counts.values())} variables {counts}")
    print("train_on_batch's host work (the compiled step replaced by one that returns at once):")
    print(f"  before dispatch   {before:7.2f} ms/call (adds to every step)")
    print(f"  after dispatch    {after:7.2f} ms/call (variable write-back and logs; overlaps an "
          "asynchronous device's work)")
    print(f"  timed on their own: _get_jax_state {t_get:.2f} ms, jax_state_sync {t_sync:.2f} ms")
    print("RESULT_JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
