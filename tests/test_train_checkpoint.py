"""Atomic verified checkpoints, the checkpoint/NaN callbacks and the resumable trainer,
in-process on the current backend."""

import json
import os
import sys
import warnings

import keras
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))

import train_common  # noqa: E402

from deeplab_keras.train import callbacks as callbacks_lib  # noqa: E402
from deeplab_keras.train import checkpoint as ckpt  # noqa: E402
from deeplab_keras.train import trainer  # noqa: E402

pytestmark = pytest.mark.tf_free_host


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _trained_model(steps=2):
    model = train_common.make_model()
    x, y = train_common.make_batch(0)
    model.fit(x, y, batch_size=len(x), epochs=steps, verbose=0, shuffle=False)
    return model


def test_save_restore_round_trip_weights_optimizer_and_random_state(tmp_path):
    model = _trained_model()
    prefix = ckpt.save_checkpoint(tmp_path, model, step=2, extra_state={"epoch": 1, "seed": 3})
    assert prefix == str(tmp_path / "ckpt-00000002")
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000002.json", "ckpt-00000002.state.npz",
                                            "ckpt-00000002.weights.h5"]
    record = json.load(open(prefix + ".json"))
    assert record["step"] == 2 and record["metadata"] == {"epoch": 1, "seed": 3}
    assert record["keras_version"] == keras.__version__
    assert record["backend"] == keras.backend.backend()
    assert len(record["files"]["weights"]["sha256"]) == 64
    assert any(d["path"].endswith("seed_generator_state") for d in record["state_variables"])
    weights = _values(model.weights)
    optimizer = _values(model.optimizer.variables)
    state = _values(ckpt._state_variables(model))
    assert int(optimizer[0]) == 2  # iterations

    # A second model (auto-named conv2d_2, ...) with an unbuilt optimizer restores by order.
    other = train_common.make_model()
    assert other.layers[0].name != model.layers[0].name
    record = ckpt.restore_checkpoint(tmp_path, other)  # a directory means its latest
    assert record["step"] == 2 and record["metadata"]["seed"] == 3
    _assert_same(_values(other.weights), weights)
    _assert_same(_values(other.optimizer.variables), optimizer)
    _assert_same(_values(ckpt._state_variables(other)), state)
    # Standalone weights file: plain Keras loads it.
    third = train_common.make_model()
    third.optimizer.build(third.trainable_variables)
    third.load_weights(prefix + ".weights.h5")
    _assert_same(_values(third.weights), weights)


def test_restore_into_a_different_model_fails_clearly(tmp_path):
    ckpt.save_checkpoint(tmp_path, _trained_model(1), step=1)
    with pytest.raises(ckpt.CheckpointError, match="weights"):
        ckpt.restore_checkpoint(tmp_path, train_common.make_model(batch_norm=False))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ckpt.CheckpointError, match="no complete checkpoint"):
        ckpt.restore_checkpoint(tmp_path / "empty", train_common.make_model())
    with pytest.raises(ckpt.CheckpointError, match="no such checkpoint"):
        ckpt.restore_checkpoint(tmp_path / "ckpt-00000099", train_common.make_model())


def test_restore_weights_only_for_a_new_optimizer(tmp_path):
    model = _trained_model(1)
    ckpt.save_checkpoint(tmp_path, model, step=1)
    fine_tune = train_common.make_model(optimizer="sgd")  # SGD+momentum: other variables
    before = _values(fine_tune.weights)
    with pytest.raises(ckpt.CheckpointError, match="optimizer variables"):
        ckpt.restore_checkpoint(tmp_path, fine_tune)
    _assert_same(_values(fine_tune.weights), before)  # checked before anything was assigned
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Skipping variable loading")  # no noise
        ckpt.restore_checkpoint(tmp_path, fine_tune, restore_optimizer=False)
    _assert_same(_values(fine_tune.weights), _values(model.weights))
    assert int(keras.ops.convert_to_numpy(fine_tune.optimizer.iterations)) == 0


def test_max_to_keep_and_latest(tmp_path):
    model = train_common.make_model()
    for step in (5, 10, 15, 20):
        ckpt.save_checkpoint(tmp_path, model, step, max_to_keep=2)
    assert ckpt.list_checkpoints(tmp_path) == [15, 20]
    assert len(os.listdir(tmp_path)) == 6
    assert ckpt.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-00000020")
    assert ckpt.latest_checkpoint(tmp_path / "missing") is None


@pytest.mark.parametrize("damage", ["truncate_weights", "flip_state_byte", "bad_json",
                                    "missing_state"])
def test_torn_or_corrupt_newest_checkpoint_is_skipped(tmp_path, damage):
    model = train_common.make_model()
    ckpt.save_checkpoint(tmp_path, model, 5)
    good = _values(model.weights)
    model.set_weights([w + 1.0 for w in model.get_weights()])
    newest = ckpt.save_checkpoint(tmp_path, model, 10)
    if damage == "truncate_weights":
        path = newest + ".weights.h5"
        os.truncate(path, os.path.getsize(path) // 2)
    elif damage == "flip_state_byte":
        path = newest + ".state.npz"
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(path, "wb").write(bytes(data))
    elif damage == "bad_json":
        path = newest + ".json"
        open(path, "w").write('{"step": 10, "fil')
    else:
        path = newest + ".state.npz"
        os.remove(path)
    with pytest.warns(UserWarning, match="ckpt-00000010"):
        latest = ckpt.latest_checkpoint(tmp_path)
    assert latest == str(tmp_path / "ckpt-00000005")
    with pytest.raises(ckpt.CheckpointError):
        ckpt.restore_checkpoint(newest, train_common.make_model())
    restored = train_common.make_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ckpt.restore_checkpoint(tmp_path, restored)
    _assert_same(_values(restored.weights), good)


def test_crash_between_temp_write_and_rename_keeps_previous(tmp_path, monkeypatch):
    model = train_common.make_model()
    ckpt.save_checkpoint(tmp_path, model, 5)
    write_state = ckpt._write_state

    def crash_on_state(tmp, arrays):
        write_state(tmp, arrays)
        raise KeyboardInterrupt("simulated kill after the temp state file was written")

    monkeypatch.setattr(ckpt, "_write_state", crash_on_state)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, model, 10)
    monkeypatch.setattr(ckpt, "_write_state", write_state)
    # Step 10's weights file is in place but it has no record: not a checkpoint.
    assert os.path.exists(tmp_path / "ckpt-00000010.weights.h5")
    assert ckpt.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-00000005")
    # A real kill also leaves the temp file; the next save removes it.
    (tmp_path / ".ckpt-00000010.state.npz.deadbeef.partial.npz").write_bytes(b"partial")
    ckpt.save_checkpoint(tmp_path, model, 10)
    assert not [n for n in os.listdir(tmp_path) if ".partial" in n]
    assert ckpt.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-00000010")


def test_non_finite_weights_are_never_saved(tmp_path):
    model = train_common.make_model()
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    with pytest.raises(ckpt.CheckpointError, match="non-finite"):
        ckpt.save_checkpoint(tmp_path, model, 1)
    assert not os.path.exists(tmp_path / "ckpt-00000001.json")


def test_only_the_chief_writes(tmp_path, monkeypatch):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 1}}))
    assert ckpt.save_checkpoint(tmp_path / "w1", train_common.make_model(), 1) is None
    assert not os.path.exists(tmp_path / "w1")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 0}}))
    assert ckpt.save_checkpoint(tmp_path / "w0", train_common.make_model(), 1) is not None


def test_checkpoint_callback_every_n_steps(tmp_path):
    model = train_common.make_model()
    x, y = train_common.make_batch(0, batch=8)
    saver = callbacks_lib.CheckpointCallback(tmp_path, save_every=3, max_to_keep=None,
                                             extra_state_fn=lambda: {"run": "a"})
    model.fit(x, y, batch_size=2, epochs=3, verbose=0, shuffle=False, callbacks=[saver])
    assert ckpt.list_checkpoints(tmp_path) == [3, 6, 9, 12]  # 4 batches x 3 epochs
    record = ckpt.read_record(saver.last_saved)
    assert record["metadata"]["run"] == "a" and record["metadata"]["data_position"] == 12
    with pytest.raises(ValueError, match="save_every"):
        callbacks_lib.CheckpointCallback(tmp_path, save_every=0)


class _NaNAtStep(train_common.StepBatches):
    """StepBatches whose batch trained as step `nan_step` (1-based) is all NaN."""

    nan_step = 7

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        if self.start + index + 1 == self.nan_step:
            x = np.full_like(x, np.nan)
        return x, y


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.warns(UserWarning, match="step 7"):
        run = trainer.fit(train_common.make_model, _NaNAtStep, total_steps=20,
                          steps_per_checkpoint=5, checkpoint_dir=tmp_path, seed=0, verbose=0)
    assert run.stopped_on_nonfinite_loss and run.nonfinite_step == 7
    assert run.end_step == 7
    assert ckpt.list_checkpoints(tmp_path) == [5]
    assert run.last_checkpoint == str(tmp_path / "ckpt-00000005")
    restored = train_common.make_model()
    ckpt.restore_checkpoint(run.last_checkpoint, restored)
    assert all(np.all(np.isfinite(w)) for w in _values(restored.weights))
    # The model itself is broken (NaN weights): exactly the state that was not written.
    assert not all(np.all(np.isfinite(w)) for w in _values(run.model.weights))


def test_trainer_resume_is_bit_identical_in_process(tmp_path):
    """PyDataset with prefetch workers (the OrderedBatches path), a partial last epoch, and a
    resume with a different checkpoint interval (a partial first epoch)."""

    def data(start, num_steps):
        return train_common.StepBatches(start, num_steps, workers=2)

    full = trainer.fit(train_common.make_model, data, total_steps=11, steps_per_checkpoint=4,
                       checkpoint_dir=tmp_path / "full", seed=1, verbose=0)
    assert ckpt.list_checkpoints(tmp_path / "full") == [4, 8, 11]
    expected = _values(full.model.weights)
    keras.backend.clear_session()
    first = trainer.fit(train_common.make_model, data, total_steps=6, steps_per_checkpoint=3,
                        checkpoint_dir=tmp_path / "parts", seed=1, verbose=0)
    assert (first.start_step, first.end_step) == (0, 6)
    keras.backend.clear_session()
    second = trainer.fit(train_common.make_model, data, total_steps=11, steps_per_checkpoint=4,
                         checkpoint_dir=tmp_path / "parts", seed=1, verbose=0)
    assert second.restored_from == str(tmp_path / "parts" / "ckpt-00000006")
    assert (second.start_step, second.end_step) == (6, 11)
    assert ckpt.list_checkpoints(tmp_path / "parts") == [6, 8, 11]
    assert [len(h.epoch) for h in second.histories] == [1, 1]  # steps 6-8, then 8-11
    _assert_same(_values(second.model.weights), expected)
    # Already finished: nothing to train, same weights.
    keras.backend.clear_session()
    again = trainer.fit(train_common.make_model, data, total_steps=11, steps_per_checkpoint=4,
                        checkpoint_dir=tmp_path / "parts", seed=1, verbose=0)
    assert again.histories == [] and again.end_step == 11
    _assert_same(_values(again.model.weights), expected)


def test_trainer_errors(tmp_path):
    data = train_common.dataset_fn("py")
    uncompiled = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="not compiled"):
        trainer.fit(uncompiled, data, 4, 2, tmp_path)
    with pytest.raises(ValueError, match="total_steps"):
        trainer.fit(train_common.make_model, data, 0, 2, tmp_path)
    with pytest.raises(ValueError, match="shuffle"):
        trainer.fit(train_common.make_model, data, 4, 2, tmp_path, shuffle=True)
    with pytest.raises(TypeError, match="keras.Model"):
        trainer.fit("model", data, 4, 2, tmp_path)
    with pytest.raises(ValueError, match="ran out"), pytest.warns(UserWarning, match="ran out"):
        trainer.fit(train_common.make_model, lambda s, n: train_common.StepBatches(s, n - 1),
                    4, 2, tmp_path / "short", verbose=0)
