"""Export for deployment: SavedModel, LiteRT (TFLite) and ONNX, uint8 images in, labels and
probabilities out, class names and palette included.

- `tf_saved_model` (alias `saved_model`): any batch and image size (or a fixed `input_size`);
  runs in TensorFlow / TF Serving; float32; optional dense-CRF signature.
- `litert` (alias `tflite`): batch of one at a fixed `input_size`; runs in `ai-edge-litert`
  without TensorFlow; float32, float16, dynamic-range int8 or full int8 (calibrated).
- `onnx` (opset 17): any batch and image size (or a fixed `input_size`); runs in onnxruntime.

Exporting needs the TensorFlow backend (the converters are TensorFlow's); the exported files do
not need deeplab_keras, and LiteRT and ONNX files do not need TensorFlow.

Example:

```python
import deeplab_keras as dk
model = dk.load_model("deeplabv3plus_mobilenetv2_camvid")
dk.export(model, "camvid_saved_model", format="tf_saved_model", crf=True)
dk.export(model, "camvid_int8.tflite", format="litert", input_size=(360, 480),
          quantize="int8", calibration_data="camvid/train")
dk.export(model, "camvid.onnx", format="onnx")
```
"""

from deeplab_keras.deploy.options import ALIASES
from deeplab_keras.deploy.options import FORMATS
from deeplab_keras.deploy.options import ONNX_OPSET
from deeplab_keras.deploy.options import QUANTIZE
from deeplab_keras.deploy.options import ExportError
from deeplab_keras.deploy.options import check_request


def _require_tensorflow():
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        raise ExportError("export: exporting needs TensorFlow (SavedModel, LiteRT and ONNX "
                          "are written by TensorFlow's converters) and it is not installed: "
                          "pip install tensorflow, then export with KERAS_BACKEND=tensorflow "
                          "(weights saved on JAX load there).")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(f"export: exporting runs on the TensorFlow backend; Keras is using "
                          f"{keras.backend.backend()!r}. Save the model (model.save('m.keras')) "
                          "and export it in a process started with KERAS_BACKEND=tensorflow "
                          "(`deeplab-keras export` does that unless --backend says otherwise).")


def _format_requirements(format):
    import importlib.util

    needed = {"litert": [], "onnx": ["tf2onnx", "onnx"]}.get(format, [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"export: the {format} format needs {', '.join(missing)}: "
                          "pip install 'deeplab-keras[export]' (or pip install "
                          f"{' '.join(missing)}).")


def _check_dense_crf(model, request):
    """A model with a `DenseCRF` inside (e.g. `CRFRefined`) exports to tf_saved_model alone, and
    never together with `crf=` (which would refine twice)."""
    from deeplab_keras.layers.dense_crf import DenseCRF

    inner = [layer.name for layer in model._flatten_layers(include_self=False, recursive=True)
             if isinstance(layer, DenseCRF)]
    if not inner:
        return
    where = f"the model {model.name!r} contains the dense CRF layer {inner[0]!r}"
    if request.format != "tf_saved_model":
        raise ExportError(
            f"export: {where}, which {request.format} cannot express (its permutohedral "
            "lattice needs TensorFlow's Unique, SparseTensorDenseMatMul and dynamic shapes). "
            f"Export the network without it, dk.export(dk.models.unwrap(model), ...), and "
            "refine on the host, or export to tf_saved_model.")
    if request.crf is not None:
        raise ExportError(f"export: {where}, so crf= would refine twice; export "
                          "dk.models.unwrap(model) with crf=..., or the model without crf=.")


def export(model, path, format="tf_saved_model", input_size=None, quantize=None,
           calibration_data=None, crf=None):
    """Exports a segmentation model for deployment; returns the path written.

    Every export takes uint8 RGB images `[B, H, W, 3]` and returns `labels` (int32
    `[B, H, W]`) and `probabilities` (float32 `[B, H, W, C]`) at the input size. The file or
    folder is written atomically: an existing export at `path` is replaced only once the new
    one is complete; a failure leaves nothing behind.

    Args:
        model: a DeepLab model (or any Keras model taking RGB float32 0..255 and returning
            logits at input size), a registry name or a `.keras` path.
        path: the output: a folder for `tf_saved_model`, `*.tflite` for `litert` (plus
            `*.json` beside it with the class names and palette), `*.onnx` for `onnx`.
        format: "tf_saved_model" ("saved_model"), "litert" ("tflite") or "onnx".
        input_size: (height, width). Required for litert (fixed size, batch 1); for the other
            formats it fixes the size (default: any size).
        quantize: litert only: None / "none", "float16", "dynamic_int8" or "int8".
        calibration_data: for "int8": a folder of images (searched recursively), a list of
            paths or an array `[N, H, W, 3]`; up to 100 images, spread over what is given.
            Use images other than those you evaluate the export on.
        crf: tf_saved_model only: adds a `serve_crf` signature refined by the dense CRF; the
            values `segment(crf=...)` takes (True: the model's released parameters).

    Example:

    ```python
    dk.export(model, "camvid.tflite", format="tflite", input_size=(360, 480),
              quantize="float16")
    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter("camvid.tflite").get_signature_runner()
    labels = runner(images=image[None])["labels"][0]
    ```
    """
    request = check_request(format, path, input_size, quantize, calibration_data, crf)
    _require_tensorflow()
    _format_requirements(request.format)
    if isinstance(model, str):
        from deeplab_keras.weights.loading import load_model

        model = load_model(model)
    _check_dense_crf(model, request)
    from deeplab_keras.deploy.metadata import export_metadata

    metadata = export_metadata(model, request)
    if request.format == "tf_saved_model":
        from deeplab_keras.deploy.saved_model import export_saved_model
        from deeplab_keras.inference import resolve_crf

        crf_layer = resolve_crf(request.crf, getattr(model, "weight_record", None))
        return export_saved_model(model, request, metadata, crf_layer)
    if request.format == "litert":
        from deeplab_keras.deploy.litert import export_litert

        return export_litert(model, request, metadata)
    from deeplab_keras.deploy.onnx import export_onnx

    return export_onnx(model, request, metadata)


__all__ = ["ALIASES", "FORMATS", "ONNX_OPSET", "QUANTIZE", "ExportError", "export"]
