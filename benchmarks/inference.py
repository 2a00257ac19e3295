"""Inference speed: deeplab_keras vs torchvision / segmentation-models-pytorch.

`--model resnet101` (default): DeepLabV3-ResNet101 against torchvision's, same weights.
`--model mobilenetv2` / `--model xception65` (TF CPU mode): our DeepLabV3+ against
segmentation-models-pytorch's `DeepLabV3Plus(encoder_name="mobilenet_v2" / "tu-xception65",
encoder_output_stride=16)`, both random weights (the architectures differ in details, so
no weights are copied): ours is configured like smp's (ASPP rates 12/24/36 with 256
depthwise-separable filters, decoder 256 filters, 48 low-level channels); both parameter
counts are printed. smp needs sizes divisible by 16: 512 by default.

Both models compute the same function: ours is
`DeepLabV3(backbone="resnet101_v1_5", output_stride=8, num_classes=21,
head="torchvision")` with the weights of a (randomly initialised)
`torchvision.models.segmentation.deeplabv3_resnet101(aux_loss=False)` copied
in by `deeplab_keras.convert.from_torchvision`; the max abs difference of the
logits is printed as a sanity check. The two are timed in ONE process,
interleaved (alternating every repetition) after warm-up, and the median time
is reported.

Torchvision gets its input already normalised and NCHW (its transforms do
that outside the model); ours gets RGB 0..255 NHWC and normalises inside the
timed call.

Modes:

* TensorFlow on CPU (default): 513x513, batch 1, float32. Our model is timed
  through each of `--variants`:
    - `tf_function`: `tf.function(model(x, training=False),
      jit_compile=False)` with a fixed input signature;
    - `xla`: the same with `jit_compile=True`;
    - `predict_on_batch`: `model.predict_on_batch(x)`;
    - `eager`: `model(x, training=False)` op by op.
  With `--precisions fp32,bf16` (the default where the CPU has AVX-512 BF16 or
  AMX) our model also runs under the `mixed_bfloat16` dtype policy with the
  fp32 model's weights. Torchvision runs under `torch.inference_mode()`,
  `eval()`, `torch.set_num_threads(<cores>)`, in each of `--torch-configs`:
  NCHW fp32, channels_last fp32, channels_last with `torch.autocast(bfloat16)`
  and, on request, `torch.compile` of those. Each of our rows is divided by the
  fastest torchvision configuration of the same precision (`ratio_vs_best_peer`).

* JAX (`--backend jax --device gpu`): batch 16, 513x513, fp32 and bf16 (our
  model built under the `mixed_bfloat16` dtype policy; torchvision under
  `torch.autocast(bfloat16)`, channels_last, `cudnn.benchmark=True`). Ours is
  timed through `--variants`:
    - `jit`: `jax.jit` of `model.stateless_call(..., training=False)`, input
      already on the device, `block_until_ready` on the result;
    - `predict_on_batch`: `model.predict_on_batch(x)` (includes the copy of
      the logits back to the host).
  Torchvision runs in each of `--torch-configs` (default channels_last, eager;
  add `cl_compile_fp32,cl_compile_bf16` for `torch.compile`, `nchw_*` for
  NCHW); each of our rows' ratio is against the fastest of the same precision.
  Reports images/s. JAX preallocation is disabled so torch and JAX share the
  GPU. `--smoke` runs this path on tiny sizes (65x65, batch 2, 1 repetition)
  so it can be tested on a CPU: `--backend jax --device cpu --smoke`.

Usage:

    # CPU, TensorFlow (the default benchmark)
    python benchmarks/inference.py --reps 10 --warmup 2 --variants tf_function,xla

    # GPU, JAX (a machine with JAX + torch, no TensorFlow needed)
    python benchmarks/inference.py --backend jax --device gpu --reps 20

    # smoke test of the JAX path on CPU
    python benchmarks/inference.py --backend jax --device cpu --smoke

The last line printed is a JSON object (prefixed `RESULT_JSON `) with machine
info, versions, the command and the figures. Note: `import torch` must happen
before TensorFlow/Keras in one process (otherwise it can segfault), and
KERAS_BACKEND is set from `--backend` before Keras is imported; this script
does both.
"""

import argparse
import copy
import json
import os
import platform
import shlex
import statistics
import sys
import time

TF_VARIANTS = ("tf_function", "xla", "predict_on_batch", "eager")
JAX_VARIANTS = ("jit", "predict_on_batch")
TORCH_CONFIGS = ("nchw_fp32", "cl_fp32", "cl_bf16", "cl_compile_fp32", "cl_compile_bf16")
# --model -> (our backbone, smp encoder); resnet101 is compared with torchvision instead.
PEER_MODELS = {"resnet101": (None, None), "mobilenetv2": ("mobilenetv2", "mobilenet_v2"),
               "xception65": ("xception65", "tu-xception65")}
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow",
                   help="Keras backend for our model (set before Keras is imported).")
    p.add_argument("--model", choices=tuple(PEER_MODELS), default="resnet101",
                   help="resnet101: DeepLabV3 vs torchvision (same weights); mobilenetv2 / "
                        "xception65: DeepLabV3+ vs segmentation-models-pytorch (TF CPU mode).")
    p.add_argument("--device", choices=("cpu", "gpu"), default=None,
                   help="cpu (default for tensorflow) or gpu (default for jax).")
    p.add_argument("--size", type=int, default=None,
                   help="Square input size (513; 65 with --smoke).")
    p.add_argument("--batch", type=int, default=None,
                   help="Batch size (1 on CPU, 16 on GPU; 2 with --smoke).")
    p.add_argument("--reps", type=int, default=None,
                   help="Timed repetitions per contender (10; 1 with --smoke).")
    p.add_argument("--warmup", type=int, default=None,
                   help="Untimed warm-up calls per contender (2; 1 with --smoke).")
    p.add_argument("--variants", default=None,
                   help=f"Comma list of our inference paths. TF: {','.join(TF_VARIANTS)} "
                        f"(default tf_function,xla). JAX: {','.join(JAX_VARIANTS)} (default jit).")
    p.add_argument("--precisions", default=None,
                   help="Comma list of fp32,bf16 (default both; on a CPU without bf16 "
                        "arithmetic, fp32). TF mode bf16: our model under the mixed_bfloat16 "
                        "policy with the fp32 model's weights.")
    p.add_argument("--threads", type=int, default=None,
                   help="Threads: torch.set_num_threads and TF intra-op (default: core count).")
    p.add_argument("--inter-op", type=int, default=None,
                   help="TF inter-op threads (default: TF's own choice).")
    p.add_argument("--tf-intra-op", type=int, default=None,
                   help="TF intra-op threads, overriding --threads for TF only "
                        "(0 = TF's own choice).")
    p.add_argument("--onednn", choices=("default", "0", "1"), default="default",
                   help="Set TF_ENABLE_ONEDNN_OPTS before importing TF.")
    p.add_argument("--no-torchvision", action="store_true", help="Skip torchvision (ours only).")
    p.add_argument("--torch-configs", default=None,
                   help="torchvision configurations, comma list of "
                        f"{','.join(TORCH_CONFIGS)} (cl = channels_last, bf16 = "
                        "torch.autocast(bfloat16), compile = torch.compile). Each precision's "
                        "ratio is against the fastest configuration of that precision. "
                        "Default: nchw_fp32,cl_fp32,cl_bf16 (TF mode), cl_fp32,cl_bf16 (JAX).")
    p.add_argument("--smoke", action="store_true", help="Tiny sizes to test the code path.")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.device is None:
        args.device = "gpu" if args.backend == "jax" else "cpu"
    if args.backend == "tensorflow" and args.device != "cpu":
        p.error("the TensorFlow mode is CPU only; use --backend jax --device gpu for GPUs.")
    gpu = args.device == "gpu"
    if args.model != "resnet101" and args.backend != "tensorflow":
        p.error("--model mobilenetv2 / xception65: TF CPU mode only.")
    args.size = args.size or (65 if args.smoke else (513 if args.model == "resnet101" else 512))
    if args.model != "resnet101" and args.smoke:
        args.size = 64
    args.batch = args.batch or (2 if args.smoke else (16 if gpu else 1))
    args.reps = args.reps or (1 if args.smoke else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 2)
    allowed = TF_VARIANTS if args.backend == "tensorflow" else JAX_VARIANTS
    default_variants = "tf_function,xla" if args.backend == "tensorflow" else "jit"
    args.variants = [v for v in (args.variants or default_variants).split(",") if v]
    for v in args.variants:
        if v not in allowed:
            p.error(f"unknown variant {v!r} for backend {args.backend}; choose from {allowed}.")
    default_precisions = "fp32,bf16" if (args.backend == "jax" or cpu_has_bf16()) else "fp32"
    args.precisions = [q for q in (args.precisions or default_precisions).split(",") if q]
    for q in args.precisions:
        if q not in ("fp32", "bf16"):
            p.error(f"unknown precision {q!r}")
    if args.torch_configs is None:
        args.torch_configs = ("nchw_fp32,cl_fp32,cl_bf16" if args.backend == "tensorflow"
                              else "cl_fp32,cl_bf16")
    args.torch_configs = [c for c in args.torch_configs.split(",") if c]
    for c in args.torch_configs:
        if c not in TORCH_CONFIGS:
            p.error(f"unknown --torch-configs entry {c!r}; choose from {TORCH_CONFIGS}.")
    return args


def cpu_has_bf16():
    """True when the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_info():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": model, "cores": cores, "platform": platform.platform()}


def versions():
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "torch", "torchvision", "segmentation-models-pytorch",
                 "timm", "jax", "jaxlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def interleaved(contenders, reps, warmup):
    """Times `contenders` ({name: fn returning when the work is done}) alternately.

    Warm-up calls first (each contender in turn), then `reps` rounds; each
    round calls every contender once, the order rotating between rounds.
    Returns {name: [seconds, ...]}.
    """
    names = list(contenders)
    for _ in range(warmup):
        for n in names:
            contenders[n]()
    times = {n: [] for n in names}
    for r in range(reps):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter()
            contenders[n]()
            times[n].append(time.perf_counter() - t0)
        print(f"  rep {r + 1}/{reps}: " + ", ".join(f"{n}={times[n][-1]:.3f}s" for n in names),
              flush=True)
    return times


def build_torchvision(torch, seed):
    import torchvision

    torch.manual_seed(seed)
    tv = torchvision.models.segmentation.deeplabv3_resnet101(
        weights=None, weights_backbone=None, aux_loss=False)
    # Random but non-trivial BN statistics, so the parity check exercises them.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.0, generator=g)
                m.bias.uniform_(-0.1, 0.1, generator=g)
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return tv.eval()


def build_ours(tv_state, seed):
    import keras

    import deeplab_keras

    keras.utils.set_random_seed(seed)
    model = deeplab_keras.models.DeepLabV3(backbone="resnet101_v1_5", output_stride=8,
                                           num_classes=21, head="torchvision")
    deeplab_keras.convert.from_torchvision(model, tv_state)
    return model


def build_smp(torch, encoder, seed):
    import segmentation_models_pytorch as smp

    torch.manual_seed(seed)
    return smp.DeepLabV3Plus(encoder_name=encoder, encoder_weights=None,
                             encoder_output_stride=16, classes=21).eval()


def build_ours_like_smp(backbone, seed):
    import keras

    import deeplab_keras

    keras.utils.set_random_seed(seed)
    return deeplab_keras.models.DeepLabV3Plus(
        backbone=backbone, output_stride=16, num_classes=21, aspp_rates=(12, 24, 36),
        separable=True, aspp_filters=256, decoder_filters=256, low_level_filters=48)


def make_images(args):
    import numpy as np

    rng = np.random.RandomState(args.seed)
    x = rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32")
    mean = np.asarray(IMAGENET_MEAN, "float32")
    std = np.asarray(IMAGENET_STD, "float32")
    x_tv = np.ascontiguousarray(((x - mean) / std).transpose(0, 3, 1, 2))
    return x, x_tv


def run_tensorflow_cpu(args, torch, info):
    import numpy as np

    threads = args.threads or info["cores"]
    torch.set_num_threads(threads)
    backbone, encoder = PEER_MODELS[args.model]
    peer_name = "torchvision" if encoder is None else "smp"
    if encoder is None:
        def build_peer():
            return build_torchvision(torch, args.seed)
    else:
        def build_peer():
            return build_smp(torch, encoder, args.seed)
    tv = build_peer()
    tv_state = {k: v.detach().numpy() for k, v in tv.state_dict().items()}

    import tensorflow as tf  # after torch (see module docstring)

    tf_intra = threads if args.tf_intra_op is None else args.tf_intra_op
    tf.config.threading.set_intra_op_parallelism_threads(tf_intra)
    if args.inter_op is not None:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # noqa: BLE001 - private API, informational only
        onednn = None
    def build_our_model():
        if encoder is None:
            return build_ours(tv_state, args.seed)
        return build_ours_like_smp(backbone, args.seed)

    model = build_our_model()
    parameters = {"ours": int(model.count_params()),
                  peer_name: int(sum(p.numel() for p in tv.parameters()))}
    print(f"parameters: {parameters}", flush=True)

    x_np, x_tv_np = make_images(args)
    x = tf.constant(x_np)
    x_tv = torch.from_numpy(x_tv_np)
    spec = [tf.TensorSpec(x_np.shape, tf.float32)]

    models = {"fp32": model}
    if "bf16" in args.precisions:
        import keras

        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            models["bf16"] = build_our_model()
        finally:
            keras.config.set_dtype_policy("float32")
        models["bf16"].set_weights(model.get_weights())

    def make_variant(name, net):
        if name == "eager":
            return lambda: np.asarray(net(x, training=False), dtype="float32")
        if name == "predict_on_batch":
            return lambda: np.asarray(net.predict_on_batch(x_np), dtype="float32")
        fn = tf.function(lambda t: net(t, training=False), input_signature=spec,
                         jit_compile=(name == "xla"), reduce_retracing=False)
        return lambda: np.asarray(fn(x), dtype="float32")

    def make_torchvision(config):
        net, images = tv, x_tv
        if config.startswith("cl_"):
            net = build_peer().to(memory_format=torch.channels_last)
            images = x_tv.contiguous(memory_format=torch.channels_last)
        if "compile" in config:
            net = torch.compile(net)
        bf16 = config.endswith("bf16")

        def call():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                        enabled=bf16):
                out = net(images)
                return (out["out"] if isinstance(out, dict) else out).float().numpy()

        return call

    contenders = {f"ours_{v}_{q}": make_variant(v, models[q]) for q in args.precisions
                  for v in args.variants}
    if not args.no_torchvision:
        for config in args.torch_configs:
            if config.endswith("bf16") and "bf16" not in args.precisions:
                continue
            contenders[f"{peer_name}_{config}"] = make_torchvision(config)

    # Parity check (also a first warm-up of every contender).
    print("parity check / first calls ...", flush=True)
    first = {}
    first_call_s = {}
    for n, fn in contenders.items():
        t0 = time.perf_counter()
        first[n] = fn()
        first_call_s[n] = time.perf_counter() - t0
        print(f"  {n}: first call {first_call_s[n]:.2f}s, output {first[n].shape}", flush=True)
    parity = {}
    if "torchvision_nchw_fp32" in first:
        ref = first["torchvision_nchw_fp32"].transpose(0, 2, 3, 1)
        for n, y in first.items():
            if n != "torchvision_nchw_fp32":
                if n.startswith(peer_name):
                    y = y.transpose(0, 2, 3, 1)
                parity[n] = {"max_abs_diff": float(np.max(np.abs(y - ref))),
                             "max_abs_logit": float(np.max(np.abs(ref))),
                             "label_agreement": float(np.mean(y.argmax(-1) == ref.argmax(-1)))}
                print(f"  {n}: max |{n} - torchvision fp32| = "
                      f"{parity[n]['max_abs_diff']:.3e} (max |logit| "
                      f"{parity[n]['max_abs_logit']:.3e}), labels alike "
                      f"{parity[n]['label_agreement']:.4%}", flush=True)

    print(f"timing: {args.warmup} warm-up + {args.reps} interleaved reps ...", flush=True)
    times = interleaved(contenders, args.reps, args.warmup)
    figures = {}
    for n, ts in times.items():
        figures[n] = {"median_s_per_image": median(ts) / args.batch,
                      "min_s_per_image": min(ts) / args.batch,
                      "median_s_per_batch": median(ts), "times_s": ts,
                      "first_call_s": first_call_s[n]}
    for precision in args.precisions:
        peers = {n: f["median_s_per_image"] for n, f in figures.items()
                 if n.startswith(peer_name) and n.endswith(precision)}
        if not peers:
            continue
        best = min(peers, key=peers.get)
        for n, f in figures.items():
            if n.endswith(precision) and n != best:
                f["best_peer"] = best
                f["ratio_vs_best_peer"] = f["median_s_per_image"] / peers[best]
        if "torchvision_nchw_fp32" in figures:
            for n, f in figures.items():
                if n.startswith("ours") and n.endswith(precision):
                    f["ratio_vs_torchvision_nchw_fp32"] = (
                        f["median_s_per_image"] / figures["torchvision_nchw_fp32"][
                            "median_s_per_image"])
    extra = {"model": args.model, "peer": peer_name, "parameters": parameters,
             "onednn_enabled": onednn,
             "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
             "torch_threads": torch.get_num_threads(),
             "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
             "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    return figures, parity, extra


def run_jax(args, torch, info):
    import numpy as np

    dev = "cuda" if args.device == "gpu" else "cpu"
    if dev == "cpu":
        torch.set_num_threads(args.threads or info["cores"])
    else:
        torch.backends.cudnn.benchmark = True
    tv = build_torchvision(torch, args.seed)
    tv_state = {k: v.detach().numpy() for k, v in tv.state_dict().items()}
    tv = tv.to(dev)
    tv_cl = copy.deepcopy(tv).to(memory_format=torch.channels_last)
    tv_compiled = {}  # memory format -> torch.compile'd module, shared by both precisions

    import jax  # after torch
    import keras

    jax_device = jax.devices(args.device)[0]
    x_np, x_tv_np = make_images(args)
    x_tv_nchw = torch.from_numpy(x_tv_np).to(dev)
    x_tv_cl = x_tv_nchw.contiguous(memory_format=torch.channels_last)
    x = jax.device_put(x_np, jax_device)

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    figures, parity = {}, {}
    for precision in args.precisions:
        policy = "mixed_bfloat16" if precision == "bf16" else "float32"
        keras.config.set_dtype_policy(policy)
        try:
            with jax.default_device(jax_device):
                model = build_ours(tv_state, args.seed)
        finally:
            keras.config.set_dtype_policy("float32")

        def make_variant(name, model=model):
            if name == "predict_on_batch":
                return lambda: np.asarray(model.predict_on_batch(x_np))
            # Own copies: Keras' predict/fit steps may donate the variables' buffers.
            def copy(v):
                return jax.device_put(jax.numpy.array(v.value, copy=True), jax_device)

            trainable = [copy(v) for v in model.trainable_variables]
            non_trainable = [copy(v) for v in model.non_trainable_variables]

            @jax.jit
            def infer(tvars, ntvars, images):
                y, _ = model.stateless_call(tvars, ntvars, images, training=False)
                return y

            return lambda: infer(trainable, non_trainable, x).block_until_ready()

        def make_torchvision(config, precision=precision):
            channels_last = config.startswith("cl_")
            net, images = (tv_cl, x_tv_cl) if channels_last else (tv, x_tv_nchw)
            if "compile" in config:
                if channels_last not in tv_compiled:
                    tv_compiled[channels_last] = torch.compile(net)
                net = tv_compiled[channels_last]

            def call():
                with torch.inference_mode(), torch.autocast(
                        device_type=dev, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    y = net(images)["out"]
                sync()
                return y

            return call

        contenders = {f"ours_{v}_{precision}": make_variant(v) for v in args.variants}
        peer_names = []
        if not args.no_torchvision:
            for config in args.torch_configs:
                if config.endswith(precision):
                    peer_names.append(f"torchvision_{config}")
                    contenders[peer_names[-1]] = make_torchvision(config)
        print(f"[{precision}] parity check / first calls ...", flush=True)
        first, first_call_s = {}, {}
        for n, fn in contenders.items():
            t0 = time.perf_counter()
            y = fn()
            first_call_s[n] = time.perf_counter() - t0
            if hasattr(y, "float"):  # torch tensor
                y = y.float().cpu().numpy().transpose(0, 2, 3, 1)
            first[n] = np.asarray(y, dtype="float32")
            print(f"  {n}: first call {first_call_s[n]:.2f}s, output {first[n].shape}", flush=True)
        ref_name = peer_names[0] if peer_names else None
        if ref_name in first:
            for n, y in first.items():
                if n != ref_name:
                    parity[n] = {"max_abs_diff": float(np.max(np.abs(y - first[ref_name]))),
                                 "max_abs_logit": float(np.max(np.abs(first[ref_name])))}
                    print(f"  {n}: max |{n} - {ref_name}| = {parity[n]['max_abs_diff']:.3e} "
                          f"(max |logit| {parity[n]['max_abs_logit']:.3e})", flush=True)
        print(f"[{precision}] timing: {args.warmup} warm-up + {args.reps} interleaved reps ...",
              flush=True)
        times = interleaved(contenders, args.reps, args.warmup)
        for n, ts in times.items():
            figures[n] = {"images_per_s": args.batch / median(ts),
                          "median_s_per_batch": median(ts), "times_s": ts,
                          "first_call_s": first_call_s[n]}
        if peer_names:
            best = max(peer_names, key=lambda n: figures[n]["images_per_s"])
            for n in times:
                if n.startswith("ours"):
                    figures[n]["best_peer"] = best
                    figures[n]["ratio_img_per_s_vs_torchvision"] = (
                        figures[n]["images_per_s"] / figures[best]["images_per_s"])
        del model, contenders
        if dev == "cuda":
            torch.cuda.empty_cache()
    extra = {"jax_device": str(jax_device), "torch_device": dev,
             "torch_name": torch.cuda.get_device_name() if dev == "cuda" else None,
             "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
    return figures, parity, extra


def main(argv=None):
    args = parse_args(argv)
    # Before any Keras/TF/JAX import.
    os.environ["KERAS_BACKEND"] = args.backend
    if args.onednn != "default":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = args.onednn
    if args.backend == "jax":
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if args.device == "cpu":
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    import torch  # must precede TensorFlow / Keras (segfault otherwise)
    import torchvision  # noqa: F401

    info = cpu_info()
    load_start = os.getloadavg()
    command = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    print(f"machine: {info['cpu_model']}, {info['cores']} cores; command: {command}", flush=True)
    print(f"config: backend={args.backend} device={args.device} size={args.size} "
          f"batch={args.batch} reps={args.reps} warmup={args.warmup} "
          f"variants={args.variants} precisions={args.precisions}", flush=True)
    if args.backend == "tensorflow":
        figures, parity, extra = run_tensorflow_cpu(args, torch, info)
    else:
        figures, parity, extra = run_jax(args, torch, info)

    print("\nresults:")
    for n, f in figures.items():
        if "median_s_per_image" in f:
            ratio = f.get("ratio_vs_best_peer")
            print(f"  {n:28s} median {f['median_s_per_image']:.3f} s/image"
                  + (f"  vs {f['best_peer']} = {ratio:.3f}x" if ratio is not None else ""))
        else:
            ratio = f.get("ratio_img_per_s_vs_torchvision")
            print(f"  {n:28s} {f['images_per_s']:.2f} images/s"
                  + (f"  vs best {f['best_peer']} = {ratio:.3f}x" if ratio is not None else ""))
    benchmark = ("deeplabv3_resnet101_os8_inference" if args.model == "resnet101"
                 else f"deeplabv3plus_{args.model}_os16_inference")
    result = {"benchmark": benchmark, "command": command,
              "machine": info, "versions": versions(),
              "keras_backend": args.backend, "device": args.device, "size": args.size,
              "batch": args.batch, "reps": args.reps, "warmup": args.warmup,
              "smoke": args.smoke, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
              "figures": figures, "parity": parity, "settings": extra,
              "cpu_bf16": cpu_has_bf16()}
    print("RESULT_JSON " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
