"""What `export` accepts, checked before anything heavy starts (imports neither Keras nor
TensorFlow): format names and aliases, quantisation modes, input size, output path, CRF."""

import dataclasses
import os

FORMATS = ("tf_saved_model", "litert", "onnx")
ALIASES = {"saved_model": "tf_saved_model", "tflite": "litert"}
QUANTIZE = ("none", "float16", "dynamic_int8", "int8")
EXTENSIONS = {"tf_saved_model": "", "litert": ".tflite", "onnx": ".onnx"}
# ONNX opset of every ONNX export (onnxruntime >= 1.12 runs it; tf2onnx writes it).
ONNX_OPSET = 17


class ExportError(ValueError):
    """An export that cannot be done as asked; the message names the value and the fix."""


@dataclasses.dataclass(frozen=True)
class ExportRequest:
    format: str
    path: str
    input_size: tuple = None
    quantize: str = "none"
    calibration_data: object = None
    crf: object = None


def canonical_format(format):
    """Keras' format name for `format` (aliases `saved_model` and `tflite` accepted)."""
    name = str(format).lower()
    name = ALIASES.get(name, name)
    if name not in FORMATS:
        raise ExportError(f"export: unknown format {format!r}; use one of {list(FORMATS)} "
                          f"(aliases: {', '.join(f'{a}={b}' for a, b in ALIASES.items())}).")
    return name


def check_input_size(input_size):
    if input_size is None:
        return None
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    try:
        size = tuple(int(v) for v in input_size)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or min(size) < 1 or tuple(input_size) != size:
        raise ExportError(f"export: input_size must be (height, width) positive integers; "
                          f"received {input_size!r}.")
    return size


def check_path(path, format):
    """The absolute output path: right extension, and a folder we can write into."""
    if path is None or not str(path).strip():
        raise ExportError("export: give the output path.")
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    extension = EXTENSIONS[format]
    if extension and not path.endswith(extension):
        raise ExportError(f"export: a {format} export is one file ending in {extension!r}; "
                          f"received {path!r} (e.g. {os.path.splitext(path)[0] + extension}).")
    if not extension and os.path.isfile(path):
        raise ExportError(f"export: a SavedModel is a folder, but {path!r} is a file; choose "
                          "another path.")
    if extension and os.path.isdir(path):
        raise ExportError(f"export: {path!r} is a folder; give a file name ending in "
                          f"{extension!r}.")
    parent = os.path.dirname(path)
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise ExportError(f"export: cannot write {path!r}: {existing!r} is not a writable "
                          "folder; choose an output path in a folder you can write to.")
    return path


def check_request(format, path, input_size=None, quantize=None, calibration_data=None,
                  crf=None):
    """An `ExportRequest` with every argument checked; ExportError naming the fix otherwise."""
    format = canonical_format(format)
    quantize = "none" if quantize in (None, False) else str(quantize).lower()
    if quantize not in QUANTIZE:
        raise ExportError(f"export: quantize must be one of {list(QUANTIZE)}; received "
                          f"{quantize!r}.")
    if quantize != "none" and format != "litert":
        raise ExportError(f"export: quantize={quantize!r} applies to the litert format only; "
                          f"{format} exports are float32.")
    if quantize == "int8" and calibration_data is None:
        raise ExportError("export: quantize='int8' needs calibration_data: a folder (or list) "
                          "of representative images, e.g. 100 training images; not the images "
                          "you score the export on.")
    if calibration_data is not None and quantize != "int8":
        raise ExportError(f"export: calibration_data is only used by quantize='int8'; received "
                          f"it with quantize={quantize!r}.")
    if crf not in (None, False) and format != "tf_saved_model":
        raise ExportError(f"export: the dense CRF signature is exported to tf_saved_model "
                          f"only (its lattice ops have no {format} equivalent); export "
                          "without crf, or to tf_saved_model.")
    size = check_input_size(input_size)
    if format == "litert" and size is None:
        raise ExportError("export: a litert model has a fixed input size; give input_size="
                          "(height, width), e.g. (360, 480) for CamVid frames.")
    return ExportRequest(format, check_path(path, format), size, quantize, calibration_data,
                         None if crf is False else crf)


__all__ = ["ALIASES", "EXTENSIONS", "ExportError", "ExportRequest", "FORMATS", "ONNX_OPSET",
           "QUANTIZE", "canonical_format", "check_request"]
