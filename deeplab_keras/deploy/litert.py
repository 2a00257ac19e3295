"""LiteRT (TFLite) export: batch of one at a fixed size, float32 or quantised.

Built on `model.export(format="litert")` (Keras' LiteRT exporter) with the converter limited to
LiteRT's builtin ops, so the file runs in the `ai-edge-litert` interpreter without TensorFlow
(Keras' default would let TensorFlow ops through, which then need TensorFlow's Flex delegate).

Quantisation (`quantize=`):
- "float16": weights stored as float16, computed in float32 (half the file);
- "dynamic_int8": weights int8, activations quantised on the fly (a quarter of the file);
- "int8": weights and activations int8, ranges calibrated on representative images
  (`calibration_data`); ops without an int8 kernel stay float.
"""

import re

from deeplab_keras.deploy.options import ExportError
from deeplab_keras.deploy.serving import serving_model


def converter_settings(request):
    """Keras LiteRT exporter keyword arguments (TFLiteConverter attributes) for `request`."""
    import tensorflow as tf

    from deeplab_keras.deploy.calibration import calibration_images

    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    settings = {"target_spec": {"supported_ops": builtins}}
    if request.quantize == "none":
        return settings
    settings["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if request.quantize == "float16":
        settings["target_spec"]["supported_types"] = [tf.float16]
    elif request.quantize == "int8":
        batches = calibration_images(request.calibration_data, request.input_size)
        settings["representative_dataset"] = lambda: ([b] for b in batches)
        settings["target_spec"]["supported_ops"] = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                    tf.lite.OpsSet.TFLITE_BUILTINS]
    return settings


def unsupported_ops(message):
    """The TensorFlow op names a converter error says LiteRT's builtins lack."""
    found = re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)
    listed = re.search(r"TF Select ops: ([\w, ]+)", message)
    if listed:
        found += [op.strip() for op in listed.group(1).split(",")]
    return sorted(set(op for op in found if op))


def export_litert(model, request, metadata):
    """Writes the `.tflite` file (and `<name>.json` with the metadata) atomically."""
    import tensorflow as tf

    from deeplab_keras.files import atomic_path
    from deeplab_keras.files import write_json_atomic

    serving = serving_model(model, request.input_size, batch_size=1)
    spec = [tf.TensorSpec((1, *request.input_size, 3), tf.uint8, name="images")]
    settings = converter_settings(request)
    with atomic_path(request.path) as tmp:
        try:
            serving.export(tmp, format="litert", input_signature=spec, verbose=False,
                           **settings)
        except Exception as error:  # noqa: BLE001 - the converter raises several types
            if type(error).__name__ != "ConverterError":
                raise
            ops = unsupported_ops(str(error))
            if not ops:
                raise
            raise ExportError(
                f"export: {model.name} uses TensorFlow ops that LiteRT's builtin op set lacks: "
                f"{', '.join(ops)}. Export to tf_saved_model or onnx, or replace the layer "
                "that uses them.") from None
    write_json_atomic(sidecar_path(request.path), metadata)
    return request.path


def sidecar_path(path):
    """`model.tflite` -> `model.json`: class names, palette, input size (LiteRT files carry
    none of these themselves)."""
    return path[: -len(".tflite")] + ".json"


__all__ = ["converter_settings", "export_litert", "sidecar_path", "unsupported_ops"]
