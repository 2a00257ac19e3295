"""Shared checks: config round trip, `.keras` save/load, one `fit` step."""

import os

import keras
import numpy as np

from deeplab_keras import models


def random_images(batch=2, height=37, width=45, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, height, width, 3)).astype("float32")


def assert_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone


def run_layer_test(layer, input_data, expected_shape):
    """Builds, calls, checks output/compute_output_shape and config round trip."""
    output = layer(input_data)
    if isinstance(input_data, list):
        shapes = [np.shape(x) for x in input_data]
    else:
        shapes = np.shape(input_data)
    assert tuple(np.shape(output)) == tuple(expected_shape)
    computed = layer.compute_output_shape(shapes)
    assert tuple(computed) == tuple(expected_shape)
    clone = assert_config_round_trip(layer)
    clone(input_data)
    assert len(clone.weights) == len(layer.weights)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(input_data)), np.asarray(output), atol=1e-5)
    return output


def run_model_saving_test(model, images, tmp_path):
    """`.keras` save + load under safe_mode=True gives identical outputs."""
    expected = keras.tree.map_structure(np.asarray, model(images, training=False))
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    actual = keras.tree.map_structure(np.asarray, restored(images, training=False))
    keras.tree.map_structure(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), actual,
                             expected)
    return restored


def run_fit_step(model, images, num_classes, loss=None):
    """One `fit` step: finite loss and changed weights."""
    labels = np.random.default_rng(1).integers(0, num_classes, images.shape[:3]).astype("int32")
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [np.array(w) for w in model.trainable_weights]
    history = model.fit(images, labels, batch_size=len(images), epochs=1, verbose=0)
    loss_value = history.history["loss"][-1]
    assert np.isfinite(loss_value), loss_value
    after = [np.array(w) for w in model.trainable_weights]
    changed = sum(not np.allclose(a, b) for a, b in zip(before, after))
    assert changed > 0.5 * len(before), f"only {changed}/{len(before)} weights changed"
    return loss_value


def four_class_folder(root, n_train=4, n_val=2, size=(24, 32)):
    """A `--dataset folder` tree under `root`: images/{train,val}/p<i>.jpg and
    masks/{train,val}/p<i>.png holding classes 0..3 and 255; returns `root` as a string."""
    from PIL import Image

    rng = np.random.default_rng(0)
    h, w = size
    colours = np.array([[128, 128, 128], [200, 40, 40], [40, 160, 40], [60, 60, 220]])
    for split, n in (("train", n_train), ("val", n_val)):
        if n == 0:
            continue
        os.makedirs(os.path.join(root, "images", split))
        os.makedirs(os.path.join(root, "masks", split))
        for i in range(n):
            mask = np.zeros((h, w), np.uint8)
            mask[h // 2:], mask[h // 2:, w // 2:], mask[:6, :6] = 1, 2, 3
            mask[0, :3] = 255
            image = np.clip(colours[mask % 4] + rng.normal(0, 6, (h, w, 3)), 0, 255)
            Image.fromarray(image.astype(np.uint8)).save(
                os.path.join(root, "images", split, f"p{i}.jpg"), quality=95)
            Image.fromarray(mask).save(os.path.join(root, "masks", split, f"p{i}.png"))
    return str(root)


TINY_RESNET = dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4), stem_filters=4)
TINY_VGG = dict(widths=(4, 4, 4, 4, 4))


def tiny_models():
    """One tiny model per family (and per backbone family for v3/v3+)."""
    return {
        "v1": lambda: models.DeepLabV1(num_classes=3, hidden_filters=8,
                                       backbone_kwargs=TINY_VGG),
        "v2_resnet_L": lambda: models.DeepLabV2(backbone="resnet50", aspp="L", num_classes=3,
                                                backbone_kwargs=TINY_RESNET),
        "v2_vgg_S": lambda: models.DeepLabV2(backbone="vgg16", aspp="S", num_classes=3,
                                             hidden_filters=8, backbone_kwargs=TINY_VGG),
        "v3_resnet": lambda: models.DeepLabV3(backbone="resnet50_v1_5", output_stride=16,
                                              num_classes=3, aspp_filters=8, head="torchvision",
                                              backbone_kwargs=TINY_RESNET),
        "v3_mobilenet": lambda: models.DeepLabV3(backbone="mobilenetv2", output_stride=16,
                                                 num_classes=3, aspp_filters=8, aspp_rates=(),
                                                 backbone_kwargs=dict(alpha=0.1)),
        "v3plus_xception": lambda: models.DeepLabV3Plus(
            backbone="xception65", output_stride=16, num_classes=3, aspp_filters=8,
            decoder_filters=8, low_level_filters=4, separable=True, align_corners=True,
            backbone_kwargs=dict(width_multiplier=0.05, middle_units=1)),
        "v3plus_resnet": lambda: models.DeepLabV3Plus(
            backbone="resnet50_slim", output_stride=8, num_classes=3, aspp_filters=8,
            decoder_filters=8, low_level_filters=4, backbone_kwargs=TINY_RESNET),
    }
