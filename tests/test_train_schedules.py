import keras
import numpy as np
import pytest

from deeplab_keras import train


def poly_reference(step, initial, total, power=0.9, end=0.0, warmup=0, start_factor=0.1):
    if step < warmup:
        start = start_factor * initial
        return start + (initial - start) * step / warmup
    progress = min(max(step - warmup, 0) / (total - warmup), 1.0)
    return (initial - end) * (1 - progress) ** power + end


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(power=1.0, end_learning_rate=1e-4),
    dict(warmup_steps=10, warmup_start_factor=0.2),
    dict(warmup_steps=25, warmup_start_factor=0.0, end_learning_rate=5e-4, power=2.0),
])
def test_matches_numpy_formula(kwargs):
    schedule = train.PolyDecay(1e-2, total_steps=100, **kwargs)
    reference_kwargs = dict(power=kwargs.get("power", 0.9),
                            end=kwargs.get("end_learning_rate", 0.0),
                            warmup=kwargs.get("warmup_steps", 0),
                            start_factor=kwargs.get("warmup_start_factor", 0.1))
    for step in [0, 1, 5, 9, 10, 11, 25, 50, 99, 100, 101, 1000]:
        expected = poly_reference(step, 1e-2, 100, **reference_kwargs)
        actual = float(keras.ops.convert_to_numpy(schedule(step)))
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-9, err_msg=f"step {step}")


def test_caffe_poly_values_and_clamping():
    schedule = train.PolyDecay(2.5e-4, total_steps=20000)
    np.testing.assert_allclose(float(schedule(10000)), 2.5e-4 * 0.5 ** 0.9, rtol=1e-6)
    assert float(schedule(20000)) == 0.0 and float(schedule(50000)) == 0.0


def test_drives_an_optimizer_and_round_trips():
    schedule = train.PolyDecay(0.1, total_steps=10, warmup_steps=2, end_learning_rate=0.01)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(clone) is train.PolyDecay and clone.get_config() == schedule.get_config()
    optimizer = keras.optimizers.SGD(schedule)
    variable = keras.Variable(np.ones((2,), "float32"))
    optimizer.build([variable])
    for step in range(4):
        expected = poly_reference(step, 0.1, 10, end=0.01, warmup=2)
        np.testing.assert_allclose(float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
                                   expected, rtol=1e-5)
        optimizer.apply([np.zeros((2,), "float32")], [variable])


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        train.PolyDecay(0.01, total_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="end_learning_rate"):
        train.PolyDecay(0.01, total_steps=10, end_learning_rate=0.1)
    with pytest.raises(ValueError, match="power"):
        train.PolyDecay(0.01, total_steps=10, power=0)
    with pytest.raises(ValueError, match="initial_learning_rate"):
        train.PolyDecay(0.0, total_steps=10)
