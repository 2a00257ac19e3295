"""The "poly" learning-rate schedule of DeepLab, with an optional linear warm-up."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deeplab_keras")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Poly decay: `lr = (initial - end) * (1 - t / T) ** power + end`.

    With `end_learning_rate=0` this is the Caffe "poly" policy of DeepLab
    v2/v3 (`base_lr * (1 - iter / max_iter) ** 0.9`); otherwise it is TF's
    `polynomial_decay` formula, which ends exactly at `end_learning_rate`.
    Steps past `total_steps` stay at `end_learning_rate`.

    With `warmup_steps > 0` the rate first rises linearly from
    `warmup_start_factor * initial_learning_rate` (step 0) to
    `initial_learning_rate` (step `warmup_steps`); the poly decay then runs
    over the remaining steps: `t = step - warmup_steps`,
    `T = total_steps - warmup_steps`, so the rate still reaches
    `end_learning_rate` at `total_steps`.

    Args:
        initial_learning_rate: the base rate (> 0).
        total_steps: training length in optimizer steps (> warmup_steps).
        power: exponent (0.9 in the papers).
        end_learning_rate: the final rate, >= 0 and <= the initial rate.
        warmup_steps: length of the linear warm-up (0 for none).
        warmup_start_factor: warm-up start as a fraction of the initial rate.
        name: optional name.

    Example:

    ```python
    schedule = deeplab_keras.train.PolyDecay(7e-3, total_steps=30000, warmup_steps=500)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
    ```
    """

    def __init__(self, initial_learning_rate, total_steps, power=0.9, end_learning_rate=0.0,
                 warmup_steps=0, warmup_start_factor=0.1, name="poly_decay"):
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.power = float(power)
        self.end_learning_rate = float(end_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = float(warmup_start_factor)
        self.name = name
        if self.initial_learning_rate <= 0:
            raise ValueError(f"PolyDecay: initial_learning_rate must be > 0; received "
                             f"{initial_learning_rate}.")
        if not 0 <= self.end_learning_rate <= self.initial_learning_rate:
            raise ValueError(f"PolyDecay: end_learning_rate must be in [0, "
                             f"initial_learning_rate={self.initial_learning_rate}]; received "
                             f"{end_learning_rate}.")
        if self.power <= 0:
            raise ValueError(f"PolyDecay: power must be > 0; received {power}.")
        if self.warmup_steps < 0:
            raise ValueError(f"PolyDecay: warmup_steps must be >= 0; received {warmup_steps}.")
        if self.total_steps <= self.warmup_steps:
            raise ValueError(f"PolyDecay: total_steps ({total_steps}) must exceed warmup_steps "
                             f"({warmup_steps}); set total_steps to the number of optimizer "
                             "steps of the whole run (epochs * steps_per_epoch).")
        if not 0 <= self.warmup_start_factor <= 1:
            raise ValueError(f"PolyDecay: warmup_start_factor must be in [0, 1]; received "
                             f"{warmup_start_factor}.")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        initial = self.initial_learning_rate
        warmup = float(self.warmup_steps)
        span = float(self.total_steps - self.warmup_steps)
        progress = ops.clip((step - warmup) / span, 0.0, 1.0)
        decayed = ((initial - self.end_learning_rate) * ops.power(1.0 - progress, self.power)
                   + self.end_learning_rate)
        if self.warmup_steps == 0:
            return decayed
        start = self.warmup_start_factor * initial
        ramp = start + (initial - start) * ops.clip(step / warmup, 0.0, 1.0)
        return ops.where(step < warmup, ramp, decayed)

    def get_config(self):
        return dict(initial_learning_rate=self.initial_learning_rate,
                    total_steps=self.total_steps, power=self.power,
                    end_learning_rate=self.end_learning_rate, warmup_steps=self.warmup_steps,
                    warmup_start_factor=self.warmup_start_factor, name=self.name)


__all__ = ["PolyDecay"]
