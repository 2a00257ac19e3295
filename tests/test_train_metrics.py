import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from deeplab_keras import evaluation
from deeplab_keras import train
from deeplab_keras.ops import resize_bilinear


def brute_force_iou(labels, preds, num_classes, ignore=255):
    """Per-class IoU by explicit set counting, NaN for absent classes."""
    keep = labels != ignore
    ious = []
    for c in range(num_classes):
        truth, pred = (labels == c) & keep, (preds == c) & keep
        union = np.sum(truth | pred)
        ious.append(np.sum(truth & pred) / union if union else np.nan)
    return np.array(ious)


def random_pair(shape=(3, 11, 13), classes=5, seed=0, absent=None):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, shape)
    preds = np.where(rng.random(shape) < 0.6, labels, rng.integers(0, classes, shape))
    if absent is not None:
        labels[labels == absent] = 0
        preds[preds == absent] = 0
    labels[rng.random(shape) < 0.1] = 255
    return labels, preds


def tiny_conv_model(classes=3):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(classes, 1)(x))


def test_confusion_matrix_matches_brute_force():
    labels, preds = random_pair(absent=3)
    cm = evaluation.ConfusionMatrix(5, ignore_label=255)
    cm.update(labels[:2], preds[:2]).update(labels[2:], preds[2:])
    keep = labels != 255
    expected = np.zeros((5, 5), np.int64)
    for t, p in zip(labels[keep], preds[keep]):
        expected[t, p] += 1
    np.testing.assert_array_equal(cm.matrix, expected)
    ious = brute_force_iou(labels, preds, 5)
    np.testing.assert_allclose(cm.per_class_iou(), ious)
    assert np.isnan(cm.per_class_iou()[3])  # absent class: excluded from the mean
    np.testing.assert_allclose(cm.miou, np.nanmean(ious))
    np.testing.assert_allclose(cm.pixel_accuracy(), np.mean(labels[keep] == preds[keep]))
    names = ["road", "sky", "car", "tree", "person"]
    table = cm.table(names)
    assert "person" in table and "n/a" in table and f"{100 * cm.miou:.2f}" in table
    assert set(cm.per_class_dict(names)) == set(names)
    merged = evaluation.ConfusionMatrix(5).merge(cm).merge(cm)
    np.testing.assert_array_equal(merged.matrix, 2 * expected)


def test_confusion_matrix_rejects_bad_input():
    cm = evaluation.ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"1 label pixel\(s\) have values \[7\]"):
        cm.update(np.array([[0, 7], [255, 1]]), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match=r"predicted pixel\(s\) have classes \[3\]"):
        cm.update(np.zeros((2, 2), int), np.array([[0, 3], [1, 1]]))
    with pytest.raises(ValueError, match="differ in shape"):
        cm.update(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="whole class ids"):
        cm.update(np.full((2, 2), 0.5), np.zeros((2, 2), int))
    assert cm.matrix.sum() == 0  # nothing half-counted


@pytest.mark.parametrize("label_mode", ["upsample_logits", "downsample_labels"])
def test_streaming_metric_equals_numpy_confusion_matrix(label_mode):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, (4, 9, 10))
    labels[rng.random(labels.shape) < 0.1] = 255
    logits = rng.normal(size=(4, 3, 4, 4)).astype("float32")
    metric = train.MeanIoU(4, label_mode=label_mode)
    metric.update_state(labels[:2], logits[:2])
    metric.update_state(labels[2:], logits[2:])
    cm = evaluation.ConfusionMatrix(4)
    if label_mode == "upsample_logits":
        up = keras.ops.convert_to_numpy(resize_bilinear(logits, (9, 10)))
        cm.update(labels, np.argmax(up, -1))
    else:
        cm.update(labels[:, [0, 3, 6]][:, :, [0, 2, 5, 7]], np.argmax(logits, -1))
    np.testing.assert_array_equal(metric.confusion_matrix(), cm.matrix)
    np.testing.assert_allclose(float(metric.result()), cm.miou, rtol=1e-6)
    np.testing.assert_allclose(metric.per_class_iou(), cm.per_class_iou(), rtol=1e-6)
    np.testing.assert_allclose(metric.pixel_accuracy(), cm.pixel_accuracy(), rtol=1e-6)
    metric.reset_state()
    assert metric.confusion_matrix().sum() == 0 and float(metric.result()) == 0.0


def test_class_id_predictions_and_sample_weight_mask():
    labels, preds = random_pair(classes=3, seed=5)
    metric = train.MeanIoU(3, from_logits=False)
    weights = np.array([1.0, 0.0, 2.0], "float32")  # image 1 not counted
    metric.update_state(labels, preds, sample_weight=weights)
    cm = evaluation.ConfusionMatrix(3).update(labels[[0, 2]], preds[[0, 2]])
    np.testing.assert_array_equal(metric.confusion_matrix(), cm.matrix)


def test_counts_stay_exact_past_float32_precision():
    metric = train.MeanIoU(2, from_logits=False)
    big = 2 ** 40
    metric.confusion_high.assign(np.full((2, 2), big, "float32"))
    metric.confusion_low.assign(np.full((2, 2), 2 ** 20 - 1, "float32"))
    for _ in range(3):  # each update adds one pixel to cell [1, 0]
        metric.update_state(np.array([[[1]]]), np.array([[[0]]]))
    matrix = metric.confusion_matrix()
    assert matrix[1, 0] == big + 2 ** 20 - 1 + 3
    assert matrix[0, 0] == big + 2 ** 20 - 1
    assert np.float32(big) + np.float32(1) == np.float32(big)  # float32 alone would lose them


def test_out_of_range_labels_are_counted_and_raise():
    metric = train.MeanIoU(3)
    logits = np.zeros((1, 2, 2, 3), "float32")
    with pytest.raises(ValueError, match=r"2 label pixel\(s\) have values \[3, 9\]"):
        metric.update_state(np.array([[[0, 3], [9, 255]]]), logits)
    assert metric.confusion_matrix().sum() == 0  # an eager error leaves the state untouched

    model = tiny_conv_model()
    images = np.random.default_rng(0).uniform(0, 1, (2, 6, 6, 3)).astype("float32")
    labels = np.random.default_rng(1).integers(0, 3, (2, 6, 6))
    labels[1, 2, 2] = 4
    miou = train.MeanIoU(3)
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=train.SegmentationCrossEntropy(), metrics=[miou])
    with pytest.raises(ValueError, match=r"MeanIoU: 1 label pixel\(s\) outside \[0, 3\)"):
        model.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    assert float(keras.ops.convert_to_numpy(miou.invalid_labels)) == 1.0
    with pytest.raises(ValueError, match="1 label pixel"):
        miou.per_class_iou()
    miou.reset_state()
    assert float(miou.result()) == 0.0


def test_metric_in_fit_equals_confusion_matrix_of_predictions():
    model = tiny_conv_model(classes=3)
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 1, (6, 10, 12, 3)).astype("float32")
    labels = rng.integers(0, 3, (6, 10, 12))
    labels[:, :2] = 255
    model.compile(optimizer=keras.optimizers.SGD(0.0),  # weights stay fixed
                  loss=train.SegmentationCrossEntropy(), metrics=[train.MeanIoU(3)])
    history = model.fit(images, labels, batch_size=2, epochs=1, verbose=0, shuffle=False)
    predictions = np.argmax(model.predict(images, verbose=0), -1)
    cm = evaluation.ConfusionMatrix(3).update(labels, predictions)
    np.testing.assert_allclose(history.history["mean_iou"][0], cm.miou, rtol=1e-5)
    evaluated = model.evaluate(images, labels, batch_size=4, verbose=0, return_dict=True)
    np.testing.assert_allclose(evaluated["mean_iou"], cm.miou, rtol=1e-5)
    metric = [m for m in model.metrics if isinstance(m, train.MeanIoU)]
    if not metric:  # Keras wraps compiled metrics in a container
        metric = [m for c in model.metrics for m in getattr(c, "metrics", [])
                  if isinstance(m, train.MeanIoU)]
    np.testing.assert_array_equal(metric[0].confusion_matrix(), cm.matrix)


def test_config_round_trip():
    metric = train.MeanIoU(7, ignore_label=0, from_logits=False, label_mode="downsample_labels",
                           name="val_miou")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(clone) is train.MeanIoU and clone.get_config() == metric.get_config()
    with pytest.raises(ValueError, match="label_mode"):
        train.MeanIoU(3, label_mode="bicubic")


@pytest.mark.requires_tf
def test_metric_and_loss_under_mirrored_strategy():
    """Two CPU replicas: the summed metric variables equal the numpy confusion matrix, and
    the loss and the multiplier optimizer (learning rate 0: weights fixed) run there."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute check: runs once, in the TensorFlow-backend pass")
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from deeplab_keras import evaluation, train
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 1, (8, 10, 12, 3)).astype("float32")
        labels = rng.integers(0, 3, (8, 10, 12)).astype("int32")
        labels[:, :2] = 255
        with strategy.scope():
            inputs = keras.Input((None, None, 3))
            x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
            model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(x))
            miou = train.MeanIoU(3)
            optimizer = train.SGDWithMultipliers(0.0, momentum=0.9, l2_weight_decay=1e-4,
                                                 lr_multipliers={model.layers[-1].name: 10.0})
            model.compile(optimizer=optimizer, loss=train.SegmentationCrossEntropy(),
                          metrics=[miou])
        history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0, shuffle=False)
        preds = np.argmax(model.predict(images, verbose=0), -1)
        cm = evaluation.ConfusionMatrix(3).update(labels, preds)
        assert strategy.num_replicas_in_sync == 2
        assert np.array_equal(miou.confusion_matrix(), cm.matrix), miou.confusion_matrix()
        assert abs(history.history["mean_iou"][0] - cm.miou) < 1e-5
        loss = train.SegmentationCrossEntropy()
        per_batch = [float(loss(labels[i:i + 4], model.predict(images[i:i + 4], verbose=0)))
                     for i in (0, 4)]
        assert abs(history.history["loss"][0] - np.mean(per_batch)) < 1e-4, history.history
        print("OK")
    """)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
