"""Training-step speed: deeplab_keras vs torchvision, DeepLabV3-ResNet101 OS8 (issue 17).

One optimizer step on a batch of random images and labels (5% of pixels ignored, label 255),
timed as images per second, for each contender:

* `ours`: `deeplab_keras.models.DeepLabV3(backbone="resnet101_v1_5", output_stride=8,
  num_classes=21, head="torchvision")` compiled with SGD (momentum 0.9) and the project's
  `SegmentationCrossEntropy(ignore_label=255)`, stepped by `model.train_on_batch` (the step
  `model.fit` runs) on a batch already on the device. `--precision bf16` builds it under the
  `mixed_bfloat16` dtype policy. On JAX the step is `jax.jit`-compiled (Keras' `jit_compile`).
* `torchvision_<config>`: `torchvision.models.segmentation.deeplabv3_resnet101(aux_loss=False)`,
  `train()`, channels_last, SGD (momentum 0.9), `CrossEntropyLoss(ignore_index=255)`,
  `torch.autocast(bfloat16)` for bf16, `cudnn.benchmark=True` on a GPU; `cl` is eager,
  `cl_compile` adds `torch.compile` (the peer's best configuration is the faster one).

Each contender runs in its own subprocess, one after the other, in this one run: at batch 16,
513x513, output stride 8 the two trainings do not fit on one GPU together (torchvision alone
needs about 135 GiB in float32), and a process that has finished gives all its memory back.
Every contender gets `--warmup` untimed steps (compilation included, reported separately), then
`--steps` timed steps; the figure is the median of `--rounds` rounds of `--steps` steps each.
Peak device memory is reported where the framework tells it, and trainable parameter counts.

Usage:

    # lent GPU (JAX + torch, no TensorFlow needed): batch 16, 513x513, bf16
    python benchmarks/train_step.py --backend jax --device gpu
    # CPU smoke test of every code path (tiny sizes, ~2 min on 2 cores)
    python benchmarks/train_step.py --backend jax --device cpu --smoke
    python benchmarks/train_step.py --backend tensorflow --device cpu --smoke

The last line printed is a JSON object (prefixed `RESULT_JSON `) with machine, versions, the
command and the figures.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

from inference import IMAGENET_MEAN
from inference import IMAGENET_STD
from inference import cpu_info
from inference import versions

TORCH_CONFIGS = ("cl", "cl_compile")
IGNORE = 255


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("jax", "tensorflow"), default="jax",
                   help="Keras backend for ours (the GPU machines have JAX, not TensorFlow).")
    p.add_argument("--device", choices=("cpu", "gpu"), default="gpu")
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--size", type=int, default=None, help="Square crop (513; smoke 65).")
    p.add_argument("--batch", type=int, default=None, help="Images per step (16; smoke 2).")
    p.add_argument("--steps", type=int, default=None, help="Timed steps per round (10; smoke 2).")
    p.add_argument("--rounds", type=int, default=None, help="Timed rounds (3; smoke 1).")
    p.add_argument("--warmup", type=int, default=None, help="Untimed first steps (3; smoke 1).")
    p.add_argument("--torch_configs", default="cl,cl_compile",
                   help=f"torchvision configurations, comma list of {TORCH_CONFIGS}.")
    p.add_argument("--no_torchvision", action="store_true", help="Time ours only.")
    p.add_argument("--contender_timeout", type=float, default=600.0,
                   help="Seconds after which a contender's subprocess is stopped (reported).")
    p.add_argument("--budget_s", type=float, default=None,
                   help="Whole run's budget in seconds: each contender is stopped by it too, "
                        "and one that cannot start in time is reported as not run, so the "
                        "results are always printed.")
    p.add_argument("--smoke", action="store_true", help="Tiny sizes, to test the code paths.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.backend == "tensorflow" and args.device == "gpu":
        p.error("--backend tensorflow: this benchmark's TensorFlow mode is CPU only (the lent "
                "GPU machines have no TensorFlow); use --backend jax --device gpu.")
    args.size = args.size or (65 if args.smoke else 513)
    args.batch = args.batch or (2 if args.smoke else 16)
    args.steps = args.steps or (2 if args.smoke else 10)
    args.rounds = args.rounds or (1 if args.smoke else 3)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 3)
    args.torch_configs = [c for c in args.torch_configs.split(",") if c]
    for c in args.torch_configs:
        if c not in TORCH_CONFIGS:
            p.error(f"--torch_configs: unknown {c!r}; choose from {TORCH_CONFIGS}.")
    return args


def make_batch(args):
    """Random RGB 0..255 images [B, S, S, 3] and labels [B, S, S] in 0..20 with 5% 255s."""
    import numpy as np

    rng = np.random.RandomState(args.seed)
    images = rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32")
    labels = rng.randint(0, 21, (args.batch, args.size, args.size)).astype("int32")
    labels[rng.uniform(size=labels.shape) < 0.05] = IGNORE
    return images, labels


def timed_steps(step, args):
    """Warm-up steps (timed together as `first_steps_s`), then rounds of timed steps."""
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        loss = step()
    first = time.perf_counter() - t0
    rounds = []
    for r in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        rounds.append(time.perf_counter() - t0)
        print(f"  round {r + 1}/{args.rounds}: {args.batch * args.steps / rounds[-1]:.2f} "
              f"images/s (loss {loss:.4f})", flush=True)
    per_step = statistics.median(rounds) / args.steps
    return {"images_per_s": args.batch / per_step, "median_s_per_step": per_step,
            "rounds_s": rounds, "first_steps_s": first, "last_loss": float(loss)}


def worker_ours(args):
    import keras
    import numpy as np

    import deeplab_keras

    keras.utils.set_random_seed(args.seed)
    if args.precision == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    model = deeplab_keras.models.DeepLabV3(backbone="resnet101_v1_5", output_stride=8,
                                           num_classes=21, head="torchvision")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=deeplab_keras.train.SegmentationCrossEntropy(ignore_label=IGNORE),
                  jit_compile=(args.backend == "jax"))
    images, labels = make_batch(args)
    if args.backend == "jax":
        import jax

        device = jax.devices(args.device)[0]
        images, labels = jax.device_put(images, device), jax.device_put(labels, device)
    else:
        import tensorflow as tf

        images, labels = tf.constant(images), tf.constant(labels)

    def step():
        return float(np.asarray(model.train_on_batch(images, labels)))

    figures = timed_steps(step, args)
    figures["parameters"] = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    figures["dtype_policy"] = model.dtype_policy.name
    if args.backend == "jax" and args.device == "gpu":
        stats = jax.devices("gpu")[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            figures["peak_memory_gib"] = stats["peak_bytes_in_use"] / 2**30
    return figures


def worker_torchvision(args, config):
    import numpy as np
    import torch
    import torchvision

    dev = "cuda" if args.device == "gpu" else "cpu"
    if dev == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(args.seed)
    net = torchvision.models.segmentation.deeplabv3_resnet101(
        weights=None, weights_backbone=None, aux_loss=False, num_classes=21)
    net = net.to(dev).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    images, labels = make_batch(args)
    images = (images - np.asarray(IMAGENET_MEAN, "float32")) / np.asarray(IMAGENET_STD, "float32")
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(dev).contiguous(
        memory_format=torch.channels_last)
    y = torch.from_numpy(labels.astype("int64")).to(dev)
    forward = torch.compile(net) if config == "cl_compile" else net
    bf16 = args.precision == "bf16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=bf16):
            loss = criterion(forward(x)["out"], y)
        loss.backward()
        optimizer.step()
        return float(loss.detach())  # waits for the step, as Keras' train_on_batch does

    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    figures = timed_steps(step, args)
    figures["parameters"] = int(sum(p.numel() for p in net.parameters() if p.requires_grad))
    if dev == "cuda":
        figures["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return figures


def run_worker(args):
    os.environ["KERAS_BACKEND"] = args.backend
    if args.backend == "jax":
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if args.device == "cpu":
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if args.worker == "ours":
        figures = worker_ours(args)
    else:
        figures = worker_torchvision(args, args.worker.split("torchvision_", 1)[1])
    print("WORKER_JSON " + json.dumps(figures), flush=True)


def gpu_name():
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_contender(name, argv, args, deadline):
    """Runs one contender's subprocess, echoing its output; returns its figures or an error."""
    command = [sys.executable, os.path.abspath(__file__)] + argv + ["--worker", name]
    print(f"\n== {name}", flush=True)
    t0 = time.perf_counter()
    deadline = min(deadline, t0 + args.contender_timeout)
    if deadline - t0 < 10:
        return {"error": "not run: --budget_s spent"}
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
    except OSError as error:
        return {"error": f"could not start: {error}"}
    figures, tail = None, []
    for line in proc.stdout:
        if line.startswith("WORKER_JSON "):
            figures = json.loads(line[len("WORKER_JSON "):])
            continue
        print("  " + line, end="", flush=True)
        tail = (tail + [line.rstrip()])[-5:]
        if time.perf_counter() > deadline:
            proc.kill()
            break
    try:
        code = proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    wall = time.perf_counter() - t0
    if figures is None:
        reason = (f"stopped after {deadline - t0:.0f} s (--contender_timeout / --budget_s)"
                  if time.perf_counter() > deadline else f"exit status {code}")
        return {"error": f"{reason}; last lines: {' | '.join(tail)}", "wall_s": wall}
    figures["wall_s"] = wall
    return figures


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    command = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + argv)
    machine = dict(cpu_info(), gpu=gpu_name())
    print(f"command: {command}\nconfig: backend={args.backend} device={args.device} "
          f"precision={args.precision} size={args.size} batch={args.batch} "
          f"warmup={args.warmup} steps={args.steps} rounds={args.rounds}; "
          f"{machine['cpu_model']}, {machine['cores']} cores, GPU {machine['gpu']}",
          flush=True)
    names = ["ours"] + ([] if args.no_torchvision
                        else [f"torchvision_{c}" for c in args.torch_configs])
    deadline = time.perf_counter() + (args.budget_s or float("inf"))
    figures = {name: run_contender(name, argv, args, deadline) for name in names}
    peers = {n: f["images_per_s"] for n, f in figures.items()
             if n != "ours" and "images_per_s" in f}
    best = max(peers, key=peers.get) if peers else None
    print("\nresults (images/s, higher is better):")
    for name, f in figures.items():
        if "images_per_s" not in f:
            print(f"  {name:24s} FAILED: {f['error']}")
            continue
        line = (f"  {name:24s} {f['images_per_s']:8.2f} images/s  (first {args.warmup} steps "
                f"{f['first_steps_s']:.1f} s")
        if "peak_memory_gib" in f:
            line += f", peak {f['peak_memory_gib']:.1f} GiB"
        print(line + ")")
    if best and "images_per_s" in figures["ours"]:
        ratio = figures["ours"]["images_per_s"] / peers[best]
        figures["ours"]["ratio_vs_best_peer"] = ratio
        figures["ours"]["best_peer"] = best
        print(f"  ours / best torchvision ({best}) = {ratio:.3f}x images/s")
    result = {"benchmark": "deeplabv3_resnet101_os8_train_step", "command": command,
              "machine": machine,
              "versions": versions(), "backend": args.backend, "device": args.device,
              "precision": args.precision, "size": args.size, "batch": args.batch,
              "steps": args.steps, "rounds": args.rounds, "warmup": args.warmup,
              "smoke": args.smoke, "figures": figures}
    print("RESULT_JSON " + json.dumps(result), flush=True)
    failed = [n for n, f in figures.items() if "error" in f]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
