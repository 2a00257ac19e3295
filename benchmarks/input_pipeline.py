"""Training input pipeline throughput: tf.data (numpy_function, AUTOTUNE) vs SegmentationPyDataset.

Measures images/s of the deeplab_keras training stream (decode PNG + random scale 0.5-2.0 +
pad + random crop + flip, float32/int32 batches) on CamVid train, crop 360x480, batch 8, for:

* `serial`: `load_batch` in the main thread (the reference: no parallelism);
* `tf_data`: `make_tf_dataset` (`tf.numpy_function` over `load_batch`, `num_parallel_calls=
  AUTOTUNE`, `deterministic=True`, prefetch);
* `pydataset_threads`: `SegmentationPyDataset(workers=W, use_multiprocessing=False)` read the
  way `model.fit` reads it (Keras' `PyDatasetAdapter` numpy iterator, ordered enqueuer);
* `pydataset_processes`: the same with `use_multiprocessing=True` (a fork()ed process pool).

Every variant runs the same deterministic stream (same code per sample), each from a different
start step so no variant reuses another's work. The files are read once before timing
so every variant sees a warm OS page cache. By default the clock runs from the creation of the
iterator (worker pool start-up included) to the last batch: with untimed warm-up batches the
prefetching variants would bank a queue of ready batches before the clock starts.
Variants run one after another, `--repeats` times in alternating order; the median is reported.

Usage:

```bash
python benchmarks/input_pipeline.py                       # 200 images per variant
python benchmarks/input_pipeline.py --images 800 --workers 4 --repeats 3
```

The last line printed starts with `RESULT_JSON ` and holds the machine, versions, command and
every timing.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = ("serial", "tf_data", "pydataset_threads", "pydataset_processes")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.path.join(REPO, "..", "shared", "data", "camvid"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--images", type=int, default=200, help="timed images per variant")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=0,
                        help="untimed batches per variant (0: time end to end, start-up "
                             "included; >0 lets prefetching variants bank batches untimed)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def machine_info():
    import keras
    import numpy
    import PIL

    info = {
        "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "numpy": numpy.__version__, "pillow": PIL.__version__, "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu_model"] = names[0] if names else None
    except OSError:
        pass
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    except ImportError:
        info["tensorflow"] = None
    return info


def time_batches(make_iterator, num_batches, warmup, batch_size):
    """Creates the iterator and consumes warmup + num_batches batches.

    Returns (seconds for the timed batches, seconds to the first batch). With warmup=0 the
    clock starts before the iterator (and its worker pool) is created, so start-up and
    prefetching are paid inside the timed window and no variant gets a head start.
    """
    start = time.perf_counter()
    timed_start = start
    first = None
    iterator = make_iterator()
    for index in range(warmup + num_batches):
        images, masks = next(iterator)
        assert images.shape[0] == batch_size and masks.shape[0] == batch_size
        if index == 0:
            first = time.perf_counter() - start
        if index == warmup - 1:
            timed_start = time.perf_counter()
    return time.perf_counter() - timed_start, first


def run_variant(name, examples, layout, args, start_step, num_batches):
    from deeplab_keras import data

    total = args.warmup + num_batches
    common = dict(batch_size=args.batch, crop_size=tuple(args.crop), seed=args.seed,
                  start_step=start_step, num_steps=total)
    if name == "serial":
        def generate():
            for step in range(start_step, start_step + total):
                yield data.load_batch(examples, layout, step, args.batch, tuple(args.crop),
                                      args.seed)
        return time_batches(generate, num_batches, args.warmup, args.batch)
    if name == "tf_data":
        return time_batches(lambda: iter(data.make_tf_dataset(examples, layout, **common)),
                            num_batches, args.warmup, args.batch)
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapters = []

    def make_iterator():
        dataset = data.SegmentationPyDataset(
            examples, layout, workers=args.workers,
            use_multiprocessing=(name == "pydataset_processes"), **common)
        adapters.append(PyDatasetAdapter(dataset, shuffle=False))
        return iter(adapters[0].get_numpy_iterator())

    try:
        return time_batches(make_iterator, num_batches, args.warmup, args.batch)
    finally:
        if adapters:
            adapters[0].on_epoch_end()


def main():
    args = parse_args()
    from deeplab_keras import data

    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"Unknown variants {unknown}; choose from {list(VARIANTS)}.")
    layout = data.get_layout("camvid", data_dir=args.data_dir)
    examples = data.list_examples(layout, args.data_dir, args.split)
    for example in examples:  # warm the page cache for every variant alike
        for path in (example.image_path, example.mask_path):
            with open(path, "rb") as f:
                f.read()
    num_batches = max(1, -(-args.images // args.batch))
    timed_images = num_batches * args.batch
    results = {v: [] for v in variants}
    first_batch = {v: [] for v in variants}
    step = 0
    for repeat in range(args.repeats):
        order = variants if repeat % 2 == 0 else variants[::-1]
        for name in order:
            seconds, first = run_variant(name, examples, layout, args, step,
                                         num_batches)
            step += args.warmup + num_batches
            results[name].append(timed_images / seconds)
            first_batch[name].append(first)
            print(f"  repeat {repeat} {name:<20} {timed_images / seconds:8.1f} images/s "
                  f"(first batch {first:.2f} s)", flush=True)
    info = machine_info()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    print(f"\nCamVid {args.split} ({len(examples)} images, 360x480 PNG), crop "
          f"{args.crop[0]}x{args.crop[1]}, batch {args.batch}, scale 0.5-2.0 + flip, "
          f"{timed_images} timed images per variant, workers={args.workers}")
    print(f"machine: {info.get('cpu_model')} ({info['cpus']} cpus), load average {load}; "
          f"python {info['python']}, numpy {info['numpy']}, Pillow {info['pillow']}, "
          f"keras {info['keras']} ({info['keras_backend']}), tensorflow {info['tensorflow']}")
    baseline = statistics.median(results["serial"]) if "serial" in results else None
    print(f"\n| variant | images/s (median of {args.repeats}) | vs serial |")
    print("| --- | ---: | ---: |")
    for name in variants:
        value = statistics.median(results[name])
        ratio = f"{value / baseline:.2f}x" if baseline else "-"
        print(f"| {name} | {value:.1f} | {ratio} |")
    record = {
        "benchmark": "input_pipeline", "command": " ".join([sys.executable] + sys.argv),
        "machine": info, "load_average": load, "dataset": f"camvid/{args.split}",
        "num_examples": len(examples), "crop": list(args.crop), "batch": args.batch,
        "workers": args.workers, "timed_images_per_variant": timed_images,
        "warmup_batches": args.warmup, "repeats": args.repeats,
        "images_per_s": results, "first_batch_s": first_batch,
        "median_images_per_s": {n: statistics.median(v) for n, v in results.items()},
    }
    print("RESULT_JSON " + json.dumps(record))


if __name__ == "__main__":
    main()
