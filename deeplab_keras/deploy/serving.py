"""The model every export serves: uint8 RGB images in, labels and probabilities out.

`serving_model(model, input_size)` wraps a segmentation model (RGB float32 0..255 in, logits out)
in a Keras functional model whose input is `uint8 [B, H, W, 3]` and whose outputs are
`{"labels": int32 [B, H, W], "probabilities": float32 [B, H, W, C]}` at the input size, so a
deployed model needs no preprocessing code. TensorFlow only (the exporters are TensorFlow's).
"""

import keras


class Labels(keras.layers.Layer):
    """argmax over classes as int32 (TensorFlow's ArgMax: one op in every export format;
    `keras.ops.argmax` adds a NaN check that LiteRT's builtin ops cannot express)."""

    def call(self, logits):
        import tensorflow as tf

        return tf.math.argmax(logits, axis=-1, output_type=tf.int32)

    def compute_output_spec(self, logits):
        return keras.KerasTensor(logits.shape[:-1], dtype="int32")


def _logits(output):
    """The logits tensor of a model output (a dict's "fused" entry, a list's first)."""
    if isinstance(output, dict):
        if "fused" not in output:
            raise ValueError(f"export: the model returns a dict with keys {sorted(output)}; "
                             "export needs one logits tensor (or a 'fused' entry).")
        return output["fused"]
    if isinstance(output, (list, tuple)):
        return output[0]
    return output


def _image_input(input_size, batch_size=None):
    height, width = input_size if input_size is not None else (None, None)
    return keras.Input((height, width, 3), batch_size=batch_size, dtype="uint8", name="images")


def serving_model(model, input_size=None, batch_size=None, crf_layer=None):
    """uint8 images -> {"labels", "probabilities"} around `model` (shares its weights).

    With `crf_layer` (a `DenseCRF`), the logits are refined by it before the argmax and the
    probabilities are its marginals.

    Example:

    ```python
    serving = serving_model(dk.load_model("deeplabv3plus_mobilenetv2_camvid"), (360, 480))
    serving.export("camvid.tflite", format="litert")
    ```
    """
    images = _image_input(input_size, batch_size)
    pixels = keras.layers.Activation("linear", dtype="float32", name="to_float")(
        keras.ops.cast(images, "float32"))
    logits = keras.ops.cast(_logits(model(pixels)), "float32")
    if logits.shape[-1] is None:
        raise ValueError("export: the model's number of classes (last axis of its logits) must "
                         "be static.")
    if crf_layer is not None:
        logits = crf_layer([logits, pixels])
    probabilities = keras.layers.Softmax(axis=-1, dtype="float32", name="probabilities")(logits)
    labels = Labels(name="labels")(logits)
    name = f"{model.name}_serving" + ("_crf" if crf_layer is not None else "")
    return keras.Model(images, {"labels": labels, "probabilities": probabilities}, name=name)


__all__ = ["Labels", "serving_model"]
