"""Is a tensor concrete (eager) or symbolic (inside `tf.function` / `jax.jit`)?"""

import keras


def is_concrete(x):
    """True when `x` holds values now, so a data check can raise a Python error.

    Inside a traced graph (`tf.function`, `jax.jit`, i.e. `model.fit`) it is False: raising is
    impossible there, and callers signal bad data another way (a NaN loss).

    Example:

    ```python
    if is_concrete(labels) and (ops.convert_to_numpy(labels) < 0).any():
        raise ValueError("negative labels")
    ```
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if backend == "jax":
        import jax

        return not isinstance(x, jax.core.Tracer)
    return True


__all__ = ["is_concrete"]
