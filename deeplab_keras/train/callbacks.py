"""Training callbacks: atomic checkpoints and a NaN stop that keeps the last good checkpoint."""

import math
import warnings

import keras
import numpy as np

from deeplab_keras.train import checkpoint as checkpoint_lib


def _loss_value(logs):
    """The "loss" entry of `logs` as a float, or None when absent."""
    if not logs or "loss" not in logs:
        return None
    try:
        return float(np.asarray(keras.ops.convert_to_numpy(logs["loss"])))
    except (TypeError, ValueError):
        return None


class _StepCounter(keras.callbacks.Callback):
    """Tracks the global step (batches trained) from the batch index Keras passes."""

    def __init__(self, initial_step=None):
        super().__init__()
        self.initial_step = initial_step
        self.step = 0
        self._epoch_start = 0

    def on_train_begin(self, logs=None):
        if self.initial_step is not None:
            self.step = int(self.initial_step)
        else:
            optimizer = getattr(self.model, "optimizer", None)
            self.step = int(keras.ops.convert_to_numpy(optimizer.iterations)) if (
                optimizer is not None and optimizer.built) else 0
        self._epoch_start = self.step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.step

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the index of the last batch of this call (steps_per_execution aware).
        self.step = self._epoch_start + int(batch) + 1


class CheckpointCallback(_StepCounter):
    """Writes atomic, verified checkpoints (`checkpoint.save_checkpoint`) during `fit`.

    Saves at each epoch end (`save_every="epoch"`) or every `save_every` steps. A state whose
    loss or weights are NaN/inf is never written: the save is skipped with a warning, so the
    newest checkpoint stays the last good one (pair it with `TerminateOnNaNKeepLast`). Only
    the chief process writes under multi-worker training.

    The step of a checkpoint is the global step: `initial_step` (default: the optimizer's
    `iterations` when training starts, which a restored checkpoint sets) plus the batches
    trained since.

    Args:
        directory: checkpoint directory.
        save_every: "epoch" or a number of steps.
        max_to_keep: complete checkpoints to keep (None: all).
        extra_state_fn: optional zero-argument callable returning a JSON-serialisable dict
            stored in each checkpoint's metadata (next to "step", "epoch", "data_position").
        initial_step: global step at the start of this `fit` (None: optimizer iterations).
        verbose: 1 prints a line per checkpoint.

    Example:

    ```python
    model.fit(dataset, epochs=10, steps_per_epoch=500,
              callbacks=[CheckpointCallback("runs/exp1", max_to_keep=3)])
    ```
    """

    def __init__(self, directory, save_every="epoch", max_to_keep=5, extra_state_fn=None,
                 initial_step=None, verbose=0):
        super().__init__(initial_step=initial_step)
        if save_every != "epoch" and not (isinstance(save_every, int) and save_every >= 1):
            raise ValueError(f"CheckpointCallback: save_every must be 'epoch' or an int >= 1; "
                             f"received {save_every!r}.")
        if max_to_keep is not None and int(max_to_keep) < 1:
            raise ValueError(f"CheckpointCallback: max_to_keep must be >= 1 or None; "
                             f"received {max_to_keep!r}.")
        self.directory = directory
        self.save_every = save_every
        self.max_to_keep = max_to_keep
        self.extra_state_fn = extra_state_fn
        self.verbose = verbose
        self.last_saved = None  # prefix of the last checkpoint written by this callback
        self.skipped = []  # steps whose save was refused (non-finite loss or weights)
        self._epoch = 0
        self._last_saved_step = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._last_saved_step = self.step

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        previous = self.step
        super().on_train_batch_end(batch, logs)
        if self.save_every != "epoch" and (self.step // self.save_every
                                           > previous // self.save_every):
            self._save(logs, epoch=self._epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_every == "epoch":
            self._save(logs, epoch=epoch + 1)

    def _save(self, logs, epoch):
        if self.step == self._last_saved_step:
            return
        loss = _loss_value(logs)
        if loss is not None and not math.isfinite(loss):
            self._skip(f"the loss is {loss}")
            return
        metadata = {"epoch": int(epoch), "data_position": int(self.step)}
        if self.extra_state_fn is not None:
            metadata.update(self.extra_state_fn() or {})
        try:
            prefix = checkpoint_lib.save_checkpoint(self.directory, self.model, self.step,
                                                    extra_state=metadata,
                                                    max_to_keep=self.max_to_keep)
        except checkpoint_lib.CheckpointError as error:
            self._skip(str(error))
            return
        self._last_saved_step = self.step
        if prefix is not None:
            self.last_saved = prefix
            if self.verbose:
                print(f"\nSaved checkpoint {prefix} (step {self.step})")

    def _skip(self, reason):
        self.skipped.append(self.step)
        warnings.warn(f"CheckpointCallback: not saving step {self.step} to {self.directory}: "
                      f"{reason}. The newest checkpoint stays "
                      f"{checkpoint_lib.latest_checkpoint(self.directory)}.", stacklevel=2)


class TerminateOnNaNKeepLast(_StepCounter):
    """Stops training at the first NaN/inf loss and leaves the last good checkpoint newest.

    Unlike `keras.callbacks.TerminateOnNaN` it records where training broke
    (`stopped_step`), names the checkpoint to resume from, and relies on
    `CheckpointCallback`, which never saves a non-finite state, so the broken state is not
    written. Restart from `latest_checkpoint(directory)` with a lower learning rate or fixed
    data.

    Args:
        checkpoint_dir: directory whose latest checkpoint is named in the message.
        initial_step: global step at the start of `fit` (None: optimizer iterations).

    Example:

    ```python
    model.fit(dataset, epochs=10, steps_per_epoch=500, callbacks=[
        TerminateOnNaNKeepLast("runs/exp1"), CheckpointCallback("runs/exp1")])
    ```
    """

    def __init__(self, checkpoint_dir=None, initial_step=None):
        super().__init__(initial_step=initial_step)
        self.checkpoint_dir = checkpoint_dir
        self.stopped_step = None
        self.stopped_loss = None

    @property
    def triggered(self):
        return self.stopped_step is not None

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        loss = _loss_value(logs)
        if loss is None or math.isfinite(loss) or self.triggered:
            return
        self.stopped_step = self.step
        self.stopped_loss = loss
        self.model.stop_training = True
        latest = (checkpoint_lib.latest_checkpoint(self.checkpoint_dir)
                  if self.checkpoint_dir else None)
        where = f"; resume from {latest}" if latest else ""
        warnings.warn(f"TerminateOnNaNKeepLast: loss is {loss} at step {self.step}; training "
                      f"stopped and this state is not checkpointed{where}.", stacklevel=2)
