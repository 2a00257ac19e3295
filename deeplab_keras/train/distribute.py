"""Distribution strategies by name, for both backends, and synchronized batch norm.

`get_strategy(name)` returns an object with `.scope()` and `.num_replicas_in_sync` on every
backend: a `tf.distribute.Strategy` on TensorFlow, a small wrapper around
`keras.distribution.DataParallel` on JAX. Build and compile the model inside `scope()`.

Batch norm across replicas:

- TensorFlow (`mirrored`, `multi_worker_mirrored`, `tpu`): each replica sees its slice of the
  global batch. Keras' `BatchNormalization` (and our `deeplab_keras.layers.BatchNorm`, which
  subclasses it and uses the Keras path in training) computes batch statistics per replica
  unless `synchronized=True`; then the mean and variance are all-reduced over all replicas, so
  normalisation and the moving statistics use the GLOBAL batch. `enable_sync_batch_norm(model)`
  switches every batch-norm layer of a model to synchronized statistics (the trainer does this
  itself when the strategy has more than one replica). Without it each replica normalises
  with the statistics of its own slice, and the moving mean and variance are updated from one
  replica's slice, not the global batch (measured with Keras 3.15 on two logical CPUs whose
  slices have means 0 and 10: moving mean off by 5, variance by 25; synchronized: both match
  the global batch to 1e-5, tests/test_train_distribute.py).
- JAX (`data_parallel`): the train step is one program over the globally sharded batch, so batch
  statistics are always those of the global batch; nothing to enable.
"""

import contextlib
import json
import os

import keras

STRATEGIES = ("off", "default", "one_device", "mirrored", "multi_worker_mirrored", "tpu",
              "data_parallel")
TF_ONLY = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")
COMMUNICATIONS = ("auto", "ring", "nccl")


class NoStrategy:
    """Single-device training with the same interface as a distribution strategy.

    Example:

    ```python
    strategy = NoStrategy()
    with strategy.scope():
        model = build_model()
    ```
    """

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()

    def __repr__(self):
        return "NoStrategy()"


class DataParallelStrategy:
    """JAX data parallelism (`keras.distribution.DataParallel`) behind a strategy interface.

    Creating it calls `keras.distribution.set_distribution`, so every later variable creation,
    `fit`, `evaluate` and `predict` shards the batch over `devices`; `scope()` is there so the
    same `with strategy.scope():` code runs on both backends.

    Args:
        devices: JAX device strings ("gpu:0", ...) or None for all devices.

    Example:

    ```python
    strategy = DataParallelStrategy()  # all local JAX devices
    with strategy.scope():
        model = build_model()
    ```
    """

    def __init__(self, devices=None):
        if devices is None:
            devices = keras.distribution.list_devices()
        self.devices = list(devices)
        self.distribution = keras.distribution.DataParallel(devices=self.devices)
        keras.distribution.set_distribution(self.distribution)

    @property
    def num_replicas_in_sync(self):
        return len(self.devices)

    def scope(self):
        return self.distribution.scope()

    def __repr__(self):
        return f"DataParallelStrategy(devices={self.devices})"


def get_strategy(name="default", devices=None, tpu=None, communication="auto"):
    """Returns a distribution strategy by name, usable as `with strategy.scope():`.

    Args:
        name: one of
            - "off" / "default": no distribution (`tf.distribute.get_strategy()` on
              TensorFlow, `NoStrategy` on other backends);
            - "one_device": `tf.distribute.OneDeviceStrategy` on `devices[0]` (default: the
              first GPU, else the CPU);
            - "mirrored": `tf.distribute.MirroredStrategy` over `devices` (default: all GPUs,
              or the CPU);
            - "multi_worker_mirrored": `tf.distribute.MultiWorkerMirroredStrategy`; the cluster
              comes from the `TF_CONFIG` environment variable (one process per worker; create
              the strategy at program start, before any other TensorFlow op);
            - "tpu": `tf.distribute.TPUStrategy` via `TPUClusterResolver(tpu=tpu)`. This path
              is written to TensorFlow's documented recipe but is untested here: the project
              has no TPU;
            - "data_parallel" (JAX backend): `keras.distribution.DataParallel` over `devices`
              (default: all devices), set as the global Keras distribution.
            A strategy object (anything with `.scope()`) is returned unchanged; None means
            "off".
        devices: device strings for "one_device", "mirrored" and "data_parallel".
        tpu: TPU name or grpc address for "tpu" (None: the local/Colab TPU).
        communication: all-reduce for "multi_worker_mirrored": "auto", "ring" (gRPC, works
            on CPUs) or "nccl" (GPUs).

    Returns:
        An object with `scope()` and `num_replicas_in_sync`.

    Raises:
        ValueError: unknown name or communication, a TensorFlow-only strategy on another
            backend, "data_parallel" on TensorFlow, or a malformed `TF_CONFIG`.

    Example:

    ```python
    strategy = deeplab_keras.train.distribute.get_strategy("mirrored")
    with strategy.scope():
        model = deeplab_keras.models.DeepLabV3(num_classes=21)
        model.compile(optimizer="adam", loss=...)
    ```
    """
    if name is None:
        name = "off"
    if not isinstance(name, str):
        if hasattr(name, "scope"):
            return name
        raise TypeError(f"get_strategy: `name` must be one of {STRATEGIES} or a strategy "
                        f"object with .scope(); received {name!r}.")
    key = name.strip().lower().replace("-", "_")
    if key not in STRATEGIES:
        raise ValueError(f"get_strategy: unknown strategy {name!r}; valid names are "
                         f"{', '.join(STRATEGIES)}.")
    backend = keras.backend.backend()
    if key in TF_ONLY and backend != "tensorflow":
        hint = "'data_parallel'" if backend == "jax" else "'off'"
        raise ValueError(f"get_strategy: strategy {name!r} is tf.distribute and needs the "
                         f"TensorFlow backend (KERAS_BACKEND=tensorflow), but the Keras backend "
                         f"is {backend!r}. On {backend} use {hint}.")
    if key == "data_parallel":
        if backend != "jax":
            raise ValueError(f"get_strategy: 'data_parallel' is keras.distribution on the JAX "
                             f"backend; the backend is {backend!r}. On TensorFlow use "
                             f"'mirrored' (one machine) or 'multi_worker_mirrored'.")
        return DataParallelStrategy(devices)
    if key in ("off", "default"):
        if backend != "tensorflow":
            return NoStrategy()
        import tensorflow as tf

        return tf.distribute.get_strategy()

    import tensorflow as tf

    if key == "one_device":
        if devices:
            device = devices[0]
        else:
            device = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if key == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if key == "multi_worker_mirrored":
        if communication not in COMMUNICATIONS:
            raise ValueError(f"get_strategy: communication must be one of {COMMUNICATIONS}; "
                             f"received {communication!r}.")
        cluster_spec = read_tf_config()  # validates TF_CONFIG before TF tries
        if cluster_spec is None:
            import warnings

            warnings.warn("get_strategy('multi_worker_mirrored'): TF_CONFIG is not set, so "
                          "this process trains as a single worker.", stacklevel=2)
        implementation = {
            "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
            "ring": tf.distribute.experimental.CommunicationImplementation.RING,
            "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
        }[communication]
        options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    # key == "tpu". Untested here (no TPU); follows the TensorFlow TPU guide.
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def read_tf_config():
    """Returns the parsed `TF_CONFIG` dict, or None when unset.

    Raises:
        ValueError: `TF_CONFIG` is not JSON or lacks "cluster"/"task".

    Example:

    ```python
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": ["host:1", "host:2"]},
                                          "task": {"type": "worker", "index": 0}})
    read_tf_config()["task"]["index"]  # 0
    ```
    """
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {raw[:200]!r}") from None
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object; received {raw[:200]!r}")
    if config.get("cluster") and "task" not in config:
        raise ValueError("TF_CONFIG has a 'cluster' but no 'task' ({'type': 'worker', "
                         f"'index': i}}): {raw[:200]!r}")
    return config


def is_chief():
    """Whether this process is the one that writes checkpoints and logs.

    TensorFlow multi-worker (`TF_CONFIG`): the task of type "chief", or worker 0 when the
    cluster has no chief. JAX multi-process: process 0. Single process: True.

    Example:

    ```python
    if is_chief():
        write_summary(...)
    ```
    """
    config = read_tf_config()
    if config and config.get("cluster"):
        task = config.get("task") or {}
        task_type = task.get("type")
        index = int(task.get("index", 0))
        if "chief" in config["cluster"]:
            return task_type == "chief"
        return task_type == "worker" and index == 0
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_index() == 0
    return True


def batch_norm_layers(model):
    """All `keras.layers.BatchNormalization` layers in `model`, nested ones included.

    Example:

    ```python
    [layer.name for layer in batch_norm_layers(model)]
    ```
    """
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def enable_sync_batch_norm(model, enabled=True):
    """Makes every batch-norm layer of `model` use cross-replica (global-batch) statistics.

    On TensorFlow this sets `synchronized` on each `keras.layers.BatchNormalization` (our
    `BatchNorm` included): under a strategy with several replicas the batch mean and variance
    are all-reduced, so training matches single-device training with the same global batch.
    Outside a strategy it changes nothing numerically. The compiled train function is reset so
    the next `fit` traces the change. On JAX it is a no-op (statistics are already global under
    `keras.distribution`) and returns 0.

    `synchronized=True` is written into the layer configs of a `.keras` file, and Keras
    refuses to load such a file on JAX; call `enable_sync_batch_norm(model, False)` before
    `model.save(...)` if the file must load on every backend (weights files are unaffected).

    Args:
        model: a Keras model (or layer).
        enabled: True to synchronize, False to go back to per-replica statistics.

    Returns:
        The number of layers changed.

    Example:

    ```python
    with strategy.scope():
        model = deeplab_keras.models.DeepLabV3(num_classes=21)
        enable_sync_batch_norm(model)
        model.compile(...)
    ```
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    changed = 0
    for layer in batch_norm_layers(model):
        if bool(layer.synchronized) != bool(enabled):
            layer.synchronized = bool(enabled)
            changed += 1
    if changed and hasattr(model, "train_function"):
        model.train_function = None
    return changed


def num_replicas(strategy):
    """`strategy.num_replicas_in_sync`, or 1 for None.

    Example:

    ```python
    global_batch = per_replica_batch * num_replicas(strategy)
    ```
    """
    return 1 if strategy is None else int(getattr(strategy, "num_replicas_in_sync", 1))
