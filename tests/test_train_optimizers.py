import os

import keras
import numpy as np
import pytest

from deeplab_keras import models
from deeplab_keras import train
from deeplab_keras.layers import BatchNorm

IMAGES = np.random.default_rng(0).uniform(0, 255, (2, 17, 17, 3)).astype("float32")
LABELS = np.random.default_rng(1).integers(0, 3, (2, 17, 17))


def tiny_deeplab():
    return models.DeepLabV3(backbone="resnet50_v1_5", output_stride=16, num_classes=3,
                            aspp_filters=8, aspp_rates=(), aspp_dropout=0.0,
                            backbone_kwargs=dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4),
                                                 stem_filters=4))


def tiny_model():
    """Backbone (conv + both BN kinds) and a 2-layer head; `model.backbone` like DeepLab's."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(x)
    x = keras.layers.ReLU()(BatchNorm(name="stem_bn")(x))
    x = keras.layers.Conv2D(4, 3, padding="same", name="block")(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="block_bn")(x))
    backbone = keras.Model(inputs, x, name="backbone")
    images = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="aspp")(
        backbone(images))
    model = keras.Model(images, keras.layers.Conv2D(3, 1, name="classifier")(y))
    model.backbone = backbone
    return model


def split(model):
    backbone = {id(v) for v in model.backbone.weights}
    head = [v for v in model.trainable_weights if id(v) not in backbone]
    body = [v for v in model.trainable_weights if id(v) in backbone]
    return head, body


def values(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def test_head_multipliers_select_exactly_the_head_and_scale_its_step():
    model = tiny_deeplab()
    mapping = train.head_lr_multipliers(model, 10.0, bias_multiplier=20.0)
    assert mapping == {"aspp": 10.0, "classifier": 10.0, "classifier/bias": 20.0}
    head, body = split(model)
    optimizer = train.SGDWithMultipliers(0.1, lr_multipliers=mapping)
    assert all(optimizer.learning_rate_multiplier(v) == 1.0 for v in body)
    assert {optimizer.learning_rate_multiplier(v) for v in head} == {10.0, 20.0}
    # Found through the MSC wrapper.
    assert train.head_lr_multipliers(models.MSC(model, scales=(1.0,)), 10.0) == {
        "aspp": 10.0, "classifier": 10.0}
    with pytest.raises(ValueError, match="backbone="):
        inputs = keras.Input((4,))
        train.head_lr_multipliers(keras.Model(inputs, keras.layers.Dense(2)(inputs)))
    # One step with a known gradient: lr * factor * g, factor 1 / 10 / 20.
    before = values(model.trainable_weights)
    grads = [np.full(v.shape, 0.5, "float32") for v in model.trainable_weights]
    optimizer.apply(grads, model.trainable_weights)
    head_ids = {id(v) for v in head}
    for v, old in zip(model.trainable_weights, before):
        factor = 1.0 if id(v) not in head_ids else (20.0 if v.path == "classifier/bias" else 10.0)
        np.testing.assert_allclose(values([v])[0] - old, -0.1 * factor * 0.5, rtol=1e-5,
                                   err_msg=v.path)


def test_fit_step_head_update_is_ten_times_plain_sgd():
    plain, fast = tiny_model(), tiny_model()
    fast.set_weights(plain.get_weights())
    start = values(plain.trainable_weights)
    loss = train.SegmentationCrossEntropy()
    plain.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    fast.compile(optimizer=train.make_optimizer("sgd", 0.1, momentum=0.0, head_multiplier=10.0,
                                                model=fast), loss=loss)
    assert fast.optimizer.lr_multipliers == {"aspp": 10.0, "classifier": 10.0}
    plain.fit(IMAGES, LABELS, batch_size=2, epochs=1, verbose=0, shuffle=False)
    fast.fit(IMAGES, LABELS, batch_size=2, epochs=1, verbose=0, shuffle=False)
    head_ids = {id(v) for v in split(fast)[0]}
    checked = 0
    for v_plain, v_fast, v0 in zip(plain.trainable_weights, fast.trainable_weights, start):
        step_plain = values([v_plain])[0] - v0
        step_fast = values([v_fast])[0] - v0
        factor = 10.0 if id(v_fast) in head_ids else 1.0
        # Tolerance: a few float32 ulps of the weights, times the factor.
        np.testing.assert_allclose(step_fast, factor * step_plain, rtol=1e-4,
                                   atol=3e-7 * factor, err_msg=v_fast.path)
        checked += factor == 10.0 and np.abs(step_plain).max() > 0
    assert checked == 4  # aspp and classifier, kernel and bias


def test_l2_weight_decay_goes_through_the_multiplier_and_skips_vectors():
    model = tiny_model()
    optimizer = train.SGDWithMultipliers(0.1, lr_multipliers={"classifier": 10.0},
                                         l2_weight_decay=0.01)
    before = values(model.trainable_weights)
    optimizer.apply([np.zeros(v.shape, "float32") for v in model.trainable_weights],
                    model.trainable_weights)
    for v, old in zip(model.trainable_weights, before):
        factor = 10.0 if v.path.startswith("classifier/") else 1.0
        expected = old - 0.1 * factor * 0.01 * old if len(v.shape) > 1 else old
        np.testing.assert_allclose(values([v])[0], expected, rtol=1e-5, atol=1e-8,
                                   err_msg=v.path)


def test_freeze_batch_norm_keeps_moving_statistics_during_fit():
    model = tiny_model()
    frozen = train.freeze_batch_norm(model)
    layers = train.optimizers.batch_norm_layers(model)
    assert frozen == len(layers) == 2
    assert not any(id(w) in {id(v) for v in model.trainable_weights}
                   for layer in layers for w in layer.weights)
    stats = values([layer.moving_mean for layer in layers])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=train.SegmentationCrossEntropy())
    model.fit(IMAGES, LABELS, batch_size=2, epochs=1, verbose=0)
    for old, new in zip(stats, values([layer.moving_mean for layer in layers])):
        np.testing.assert_array_equal(old, new)
    # Frozen BN runs in inference mode even with training=True.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(IMAGES, training=True)),
                               keras.ops.convert_to_numpy(model(IMAGES, training=False)),
                               atol=1e-5)


def test_compiled_model_keras_round_trip(tmp_path):
    model = tiny_model()
    schedule = train.PolyDecay(0.01, total_steps=100, warmup_steps=2)
    model.compile(optimizer=train.make_optimizer("sgd", schedule, weight_decay=5e-4,
                                                 head_multiplier=10.0, model=model),
                  loss=train.SegmentationCrossEntropy(ignore_label=255),
                  metrics=[train.MeanIoU(3)])
    model.fit(IMAGES, LABELS, batch_size=2, epochs=1, verbose=0)
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    optimizer = restored.optimizer
    assert type(optimizer) is train.SGDWithMultipliers
    assert optimizer.get_config()["lr_multipliers"] == model.optimizer.lr_multipliers
    assert optimizer.l2_weight_decay == 5e-4
    assert isinstance(optimizer._learning_rate, train.PolyDecay)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 1
    for a, b in zip(values(optimizer.variables), values(model.optimizer.variables)):
        np.testing.assert_array_equal(a, b)
    history = restored.fit(IMAGES, LABELS, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and "mean_iou" in history.history


def test_make_optimizer_variants_and_errors():
    model = tiny_model()
    adamw = train.make_optimizer("adamw", 1e-3, weight_decay=1e-4, head_multiplier=10.0,
                                 model=model)
    assert type(adamw) is train.AdamWWithMultipliers
    assert adamw.weight_decay == 1e-4 and adamw.l2_weight_decay == 0.0
    sgd = train.make_optimizer("sgd", 1e-3, weight_decay=1e-4, weight_decay_mode="decoupled")
    assert sgd.weight_decay == 1e-4 and sgd.l2_weight_decay == 0.0 and not sgd.lr_multipliers
    assert train.make_optimizer("sgd", 1e-3, momentum=0.9).momentum == 0.9
    with pytest.raises(ValueError, match="model="):
        train.make_optimizer("sgd", 1e-3, head_multiplier=10.0)
    with pytest.raises(ValueError, match="name"):
        train.make_optimizer("rmsprop")
    with pytest.raises(ValueError, match="weight_decay_mode"):
        train.make_optimizer("sgd", weight_decay_mode="l1")


def test_mixed_float16_keeps_float32_logits_and_trains():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny_deeplab()
        logits = model(IMAGES)
        assert keras.backend.standardize_dtype(logits.dtype) == "float32"
        loss = train.SegmentationCrossEntropy()
        model.compile(optimizer=train.make_optimizer("sgd", 0.01, head_multiplier=10.0,
                                                     model=model), loss=loss)
        # Keras wraps the optimizer in a LossScaleOptimizer for mixed_float16 by itself.
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert type(model.optimizer.inner_optimizer) is train.SGDWithMultipliers
        # Its default initial scale (2**15) overflows float16 on the first steps, which are
        # then skipped by design; start lower so that this one step applies.
        model.compile(optimizer=keras.optimizers.LossScaleOptimizer(
            train.make_optimizer("sgd", 0.01, head_multiplier=10.0, model=model),
            initial_scale=16.0), loss=loss, metrics=[train.MeanIoU(3)])
        before = values(model.trainable_weights)
        history = model.fit(IMAGES, LABELS, batch_size=2, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        after = values(model.trainable_weights)
        changed = sum(not np.allclose(a, b) for a, b in zip(before, after))
        assert changed > len(before) // 2, f"{changed}/{len(before)} weights changed"
    finally:
        keras.config.set_dtype_policy(policy)
