"""Writes tests/data/four_class_tf.keras: a tiny 4-class DeepLabV3+ saved by the TensorFlow
backend with its class names and colours, which tests/test_cli_journey.py reloads under JAX in
the TensorFlow-free environment. Run with TensorFlow installed:

    KERAS_BACKEND=tensorflow python tests/data/make_four_class_model.py
"""

import os

import keras

import deeplab_keras as dk

CLASS_NAMES = ["road", "car", "tree", "sky"]
PALETTE = [[128, 64, 128], [64, 0, 128], [128, 128, 0], [70, 130, 180]]


def main():
    assert keras.backend.backend() == "tensorflow", "write the fixture with TensorFlow"
    keras.utils.set_random_seed(0)
    model = dk.models.DeepLabV3Plus(
        backbone="resnet50", num_classes=4, aspp_filters=8, decoder_filters=8,
        low_level_filters=4, class_names=CLASS_NAMES, palette=PALETTE,
        backbone_kwargs=dict(depths=(1, 1, 1, 1), widths=(4, 4, 4, 4), stem_filters=4))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "four_class_tf.keras")
    model.save(path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
