"""Resumable, deterministic training: `fit` picks up from the newest complete checkpoint.

`fit` trains `total_steps` batches in epochs of `steps_per_checkpoint` steps and checkpoints
(atomically, see `checkpoint.py`) at each epoch end. Run the same command again after a crash
or a kill: it restores weights, optimizer and random state from the newest complete checkpoint
and continues with exactly the batches that would have come next, so an interrupted run ends
with the same weights as an uninterrupted one (bit-identical on CPU with TensorFlow and JAX,
tested in tests/test_train_resume.py).
"""

import contextlib
import dataclasses
import os
import warnings

import keras

from deeplab_keras.train import callbacks as callbacks_lib
from deeplab_keras.train import checkpoint as checkpoint_lib
from deeplab_keras.train import distribute
from deeplab_keras.train.ordered_batches import OrderedBatches


@dataclasses.dataclass
class TrainingRun:
    """What `fit` did.

    Attributes:
        model: the trained model (the one passed in, or the one `model_fn` built).
        start_step: global step this call started from (0, or a restored checkpoint's step).
        end_step: global step reached.
        histories: the `keras.callbacks.History` of each `model.fit` call (one, or up to three
            when the start or total is not a multiple of `steps_per_checkpoint`).
        last_checkpoint: prefix of the newest complete checkpoint afterwards (None on
            non-chief workers that cannot see it).
        restored_from: checkpoint prefix restored at the start, or None.
        stopped_on_nonfinite_loss: training stopped at a NaN/inf loss (`nonfinite_step`).
        nonfinite_step: step with the NaN/inf loss, or None.
    """

    model: keras.Model
    start_step: int
    end_step: int
    histories: list
    last_checkpoint: str = None
    restored_from: str = None
    stopped_on_nonfinite_loss: bool = False
    nonfinite_step: int = None


@contextlib.contextmanager
def determinism(seed, ops=True):
    """Seeds Python, NumPy and the backend; inside, TensorFlow ops are deterministic.

    `keras.utils.set_random_seed(seed)` seeds Python, NumPy, Keras' global seed generator
    and TensorFlow (when installed). With `ops=True` on the TensorFlow backend,
    `tf.config.experimental.enable_op_determinism()` makes ops without a deterministic
    kernel raise instead of silently varying; it is process-wide, so it is switched off again
    on exit if it was off before. On JAX the CPU is deterministic; on GPU start the process
    with `XLA_FLAGS=--xla_gpu_deterministic_ops=true`.

    Example:

    ```python
    with determinism(0):
        model = build_model()  # same initial weights every run
        model.fit(...)
    ```
    """
    keras.utils.set_random_seed(int(seed))
    restore = None
    if ops and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            from tensorflow.python.framework import config as tf_config

            if not tf_config.is_op_determinism_enabled():
                restore = tf_config.disable_op_determinism
        except (ImportError, AttributeError):  # private API moved: leave it on
            pass
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if restore is not None:
            restore()


def _check_steps(total_steps, steps_per_checkpoint):
    for name, value in (("total_steps", total_steps),
                        ("steps_per_checkpoint", steps_per_checkpoint)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"fit: `{name}` must be an int >= 1; received {value!r}.")


def _segments(start, total, every):
    """(first_step, steps_per_epoch, num_epochs) pieces that keep epoch ends on multiples of
    `every`: a partial head, the whole epochs, a partial tail."""
    pieces = []
    step = start
    if step % every and step < total:
        n = min(every - step % every, total - step)
        pieces.append((step, n, 1))
        step += n
    whole = (total - step) // every
    if whole:
        pieces.append((step, every, whole))
        step += whole * every
    if step < total:
        pieces.append((step, total - step, 1))
    return pieces


def _build_model(model, strategy, compile_fn):
    is_model = isinstance(model, keras.Model)
    if not is_model and not callable(model):
        raise TypeError(f"fit: `model` must be a keras.Model or a zero-argument function that "
                        f"builds one; received {type(model).__name__}.")
    with strategy.scope():
        if not is_model:
            model = model()
            if not isinstance(model, keras.Model):
                raise TypeError(f"fit: the model function returned {type(model).__name__}, "
                                "not a keras.Model.")
        if compile_fn is not None:
            compile_fn(model)
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ValueError(f"fit: model {model.name!r} is not compiled; call model.compile("
                         "optimizer=..., loss=...) or pass compile_fn=lambda m: m.compile(...).")
    if not model.built:
        raise ValueError(f"fit: model {model.name!r} is not built, so a checkpoint cannot be "
                         "restored into it; call it once on a batch or use a functional model.")
    return model


def _input_pipeline_error(error):
    """The Python error (e.g. a ValueError naming a corrupt image) behind a tf.data failure of
    our pipelines, so callers see our message rather than TensorFlow's wrapper."""
    import sys

    if "tensorflow" not in sys.modules:
        return None
    import tensorflow as tf

    if not isinstance(error, tf.errors.OpError):
        return None
    from deeplab_keras.data.tf_dataset import python_error

    return python_error(error)


def _is_multi_worker(strategy):
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def _patch_multi_worker(model):
    """Works around two Keras 3 bugs that make `fit` fail under MultiWorkerMirroredStrategy.

    Measured with Keras 3.15 / TensorFlow 2.21 and two workers (keras-team/keras#20585):

    1. `fit` peeks one distributed batch and calls `strategy.reduce("MEAN", batch)` to build
       the model symbolically, which raises "Attempt to convert a value (PerReplica ...) to a
       Tensor". Replaced here by a build from the local replica's batch (only its shapes and
       dtypes matter).
    2. The train step's scalar logs (loss, metrics) are reduced with
       `strategy.reduce("MEAN", v, axis=0)`, which fails for scalars ("Invalid reduction
       dimension 0 for input with 0 dimensions"). The wrapped `train_step` returns them with
       shape [1]; the axis-0 mean over all replicas then gives the usual scalar.

    Both replacements are attributes of this model instance only. Returns an undo function.
    """
    import tensorflow as tf

    strategy = model.distribute_strategy
    patched = {}

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(local, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    train_step = model.train_step

    def vector_logs_train_step(data):
        logs = train_step(data)
        return tf.nest.map_structure(
            lambda v: tf.reshape(v, [1]) if tf.is_tensor(v) and v.shape.rank == 0 else v, logs)

    if hasattr(model, "_maybe_symbolic_build") and hasattr(model, "_symbolic_build"):
        patched["_maybe_symbolic_build"] = maybe_symbolic_build
    patched["train_step"] = vector_logs_train_step
    for name, function in patched.items():
        object.__setattr__(model, name, function)
    model.train_function = None

    def undo():
        for name in patched:
            object.__delattr__(model, name)
        model.train_function = None

    return undo


def fit(model, dataset_fn, total_steps, steps_per_checkpoint, checkpoint_dir, seed=0,
        strategy=None, callbacks=(), verbose=1, max_to_keep=3, compile_fn=None,
        sync_batch_norm=True, deterministic=True, extra_state_fn=None, **fit_kwargs):
    """Trains `total_steps` batches with checkpoints, resuming from `checkpoint_dir`.

    Args:
        model: a compiled `keras.Model`, or a zero-argument function that builds (and
            compiles) one; a function is called after seeding and inside `strategy.scope()`,
            which a strategy needs and which makes fresh starts reproducible.
        dataset_fn: `dataset_fn(start_step, num_steps)` returns what `model.fit` accepts (a
            `tf.data.Dataset` or a `keras.utils.PyDataset`) yielding exactly the batches
            `start_step, start_step + 1, ..., start_step + num_steps - 1` of the run, the
            same ones every time (e.g. `deeplab_keras.data.make_tf_dataset(...,
            start_step=, num_steps=)`). It is called once per `model.fit` call.
        total_steps: batches to train in all (the run's length, not this call's).
        steps_per_checkpoint: batches per epoch; a checkpoint is written at each epoch end.
        checkpoint_dir: where checkpoints go; its newest complete one is resumed.
        seed: seeds Python, NumPy and Keras (`determinism`) before the model is built.
        strategy: a name for `distribute.get_strategy` ("mirrored", "data_parallel", ...), a
            strategy object, or None. With more than one replica, batch norm uses global
            statistics while training (`sync_batch_norm`).
        callbacks: extra Keras callbacks (called after the checkpoint callbacks).
        verbose: passed to `model.fit`; 1 also prints resume/checkpoint lines.
        max_to_keep: complete checkpoints kept.
        compile_fn: optional `compile_fn(model)` called inside the strategy scope.
        sync_batch_norm: synchronize batch norm across replicas while training (TensorFlow;
            JAX data parallelism is always global). Reverted afterwards so the model still
            saves to a `.keras` file that loads on JAX.
        deterministic: make TensorFlow ops deterministic during this call (`determinism`).
        extra_state_fn: zero-argument callable returning a dict added to each checkpoint's
            metadata.
        **fit_kwargs: passed to `model.fit` (e.g. `validation_data`, `validation_freq`).

    Returns:
        A `TrainingRun` (model, start and end step, histories, checkpoints, NaN stop).

    Raises:
        ValueError: bad steps, an uncompiled or unbuilt model, a `dataset_fn` that runs out of
            batches, or a checkpoint that does not fit the model.

    Example:

    ```python
    def dataset_fn(start_step, num_steps):
        return deeplab_keras.data.make_tf_dataset(files, batch_size=8, seed=0,
                                                  start_step=start_step, num_steps=num_steps)

    def model_fn():
        model = deeplab_keras.models.DeepLabV3(backbone="mobilenetv2", num_classes=21)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    run = deeplab_keras.train.trainer.fit(model_fn, dataset_fn, total_steps=30000,
                                          steps_per_checkpoint=1000,
                                          checkpoint_dir="runs/voc", seed=0)
    # killed? run the same call again: it continues from runs/voc's newest checkpoint.
    ```
    """
    _check_steps(total_steps, steps_per_checkpoint)
    for key in ("epochs", "initial_epoch", "steps_per_epoch", "x", "y", "batch_size",
                "shuffle"):
        if key in fit_kwargs:
            raise ValueError(f"fit: `{key}` is set by the trainer (from total_steps and "
                             f"steps_per_checkpoint; batches come in dataset_fn's order, so "
                             f"shuffle inside dataset_fn); remove it.")
    strategy = distribute.get_strategy(strategy)
    with determinism(int(seed), ops=deterministic):
        return _fit(model, dataset_fn, total_steps, steps_per_checkpoint, checkpoint_dir,
                    int(seed), strategy, callbacks, verbose, max_to_keep, compile_fn,
                    sync_batch_norm, extra_state_fn, fit_kwargs)


def _fit(model, dataset_fn, total_steps, steps_per_checkpoint, checkpoint_dir, seed, strategy,
         callbacks, verbose, max_to_keep, compile_fn, sync_batch_norm, extra_state_fn,
         fit_kwargs):
    model = _build_model(model, strategy, compile_fn)
    checkpoint_dir = os.fspath(checkpoint_dir)

    start = 0
    restored_from = checkpoint_lib.latest_checkpoint(checkpoint_dir)
    if restored_from is not None:
        with strategy.scope():
            record = checkpoint_lib.restore_checkpoint(restored_from, model)
        start = int(record["step"])
        saved_seed = record.get("metadata", {}).get("seed")
        if saved_seed is not None and int(saved_seed) != seed:
            warnings.warn(f"fit: resuming {restored_from}, saved with seed={saved_seed}, "
                          f"with seed={seed}; the run will not repeat the original.",
                          stacklevel=2)
        if start > total_steps:
            raise ValueError(f"fit: {restored_from} is at step {start}, past "
                             f"total_steps={total_steps}; raise total_steps or use a new "
                             "checkpoint_dir.")
        if verbose:
            print(f"Resuming from {restored_from} at step {start}/{total_steps}")

    def metadata():
        state = {"seed": seed, "total_steps": total_steps,
                 "steps_per_checkpoint": steps_per_checkpoint,
                 "backend": keras.backend.backend()}
        if extra_state_fn is not None:
            state.update(extra_state_fn() or {})
        return state

    sync_changed = 0
    if sync_batch_norm and distribute.num_replicas(strategy) > 1:
        sync_changed = distribute.enable_sync_batch_norm(model)
    histories = []
    step = start
    nan_stop = None
    undo_patch = _patch_multi_worker(model) if _is_multi_worker(strategy) else None
    try:
        for first, per_epoch, num_epochs in _segments(start, total_steps, steps_per_checkpoint):
            nan_stop = callbacks_lib.TerminateOnNaNKeepLast(checkpoint_dir, initial_step=first)
            saver = callbacks_lib.CheckpointCallback(
                checkpoint_dir, save_every="epoch", max_to_keep=max_to_keep,
                extra_state_fn=metadata, initial_step=first, verbose=verbose)
            initial_epoch = first // steps_per_checkpoint
            data = dataset_fn(first, per_epoch * num_epochs)
            if isinstance(data, keras.utils.PyDataset):
                data = OrderedBatches(data)
            try:
                histories.append(model.fit(
                    data, epochs=initial_epoch + num_epochs, initial_epoch=initial_epoch,
                    steps_per_epoch=per_epoch, shuffle=False,
                    callbacks=[nan_stop, saver, *callbacks], verbose=verbose, **fit_kwargs))
            except Exception as error:
                original = _input_pipeline_error(error)
                if original is None:
                    raise
                raise original from None
            if isinstance(data, OrderedBatches):
                data.close()
            step = saver.step
            if nan_stop.triggered or model.stop_training:
                break
            expected = first + per_epoch * num_epochs
            if step != expected:
                raise ValueError(f"fit: dataset_fn({first}, {per_epoch * num_epochs}) ran out "
                                 f"of batches at step {step} (expected {expected}); it must "
                                 "yield exactly num_steps batches.")
    finally:
        if undo_patch is not None:
            undo_patch()
        if sync_changed:
            distribute.enable_sync_batch_norm(model, enabled=False)
    last = checkpoint_lib.latest_checkpoint(checkpoint_dir)
    return TrainingRun(model=model, start_step=start, end_step=step, histories=histories,
                       last_checkpoint=last, restored_from=restored_from,
                       stopped_on_nonfinite_loss=bool(nan_stop and nan_stop.triggered),
                       nonfinite_step=nan_stop.stopped_step if nan_stop else None)
