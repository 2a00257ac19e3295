"""`deeplab-keras export`: --model to a SavedModel, LiteRT or ONNX file, checked on the examples."""

import os

from absl import app

from deeplab_keras.cli import flags as cli_flags
from deeplab_keras.files import disk_size

HOW_TO_CALL = {
    "tf_saved_model": ("import tensorflow as tf\n"
                       "serve = tf.saved_model.load({path!r}).signatures['serving_default']\n"
                       "out = serve(images=tf.constant(image[None]))  # uint8 [1, H, W, 3]\n"
                       "out['labels'], out['probabilities']"),
    "litert": ("from ai_edge_litert.interpreter import Interpreter\n"
               "run = Interpreter({path!r}).get_signature_runner()\n"
               "out = run(images=image[None])  # uint8 [1, {height}, {width}, 3]\n"
               "out['labels'], out['probabilities']"),
    "onnx": ("import onnxruntime\n"
             "session = onnxruntime.InferenceSession({path!r})\n"
             "labels, probabilities = session.run(None, {{'images': image[None]}})  # uint8"),
}


def _input_size():
    text = cli_flags.INPUT_SIZE.value
    return cli_flags.pair(text, "input_size") if text else None


def _default_output(format, quantize):
    from deeplab_keras.deploy.options import EXTENSIONS

    name = os.path.basename(cli_flags.MODEL.value.rstrip("/"))
    if name.endswith(".keras"):
        name = name[: -len(".keras")]
    suffix = {"tf_saved_model": "_saved_model"}.get(format, "")
    if quantize != "none":
        suffix += f"_{quantize}"
    return name + suffix + EXTENSIONS[format]


def request():
    """The checked `ExportRequest` from the flags (before Keras starts)."""
    from deeplab_keras.deploy import options

    if not cli_flags.FLAGS["model"].present:
        raise app.UsageError("export needs --model: a registry name (deeplab_keras.list_models()"
                             ") or a saved .keras file.")
    format = options.canonical_format(cli_flags.FORMAT.value)
    quantize = cli_flags.QUANTIZE.value
    calibration = cli_flags.CALIBRATION.value
    if calibration is not None and not os.path.isdir(calibration):
        raise app.UsageError(f"--calibration_data {calibration!r} is not a folder of images.")
    output = cli_flags.OUTPUT.value or _default_output(format, quantize)
    try:
        return options.check_request(format, output, _input_size(), quantize, calibration,
                                     cli_flags.crf())
    except options.ExportError as error:  # the arguments are the flags of the same names
        raise app.UsageError(str(error).replace("export: ", "", 1)) from None


def check_flags():
    request()


def _load_model():
    """--model with trained weights: a registry name or a .keras file (not an architecture)."""
    from deeplab_keras.weights import loading
    from deeplab_keras.weights import registry

    name = cli_flags.MODEL.value
    if name.endswith(".keras"):
        if not os.path.isfile(name):
            raise app.UsageError(f"--model {name!r}: no such file.")
        return loading.load_keras_file(name, compile=False)
    if name not in registry.list_models():
        raise app.UsageError(f"--model {name!r}: export needs trained weights, a registry name "
                             f"({', '.join(registry.list_models())}) or a saved .keras file.")
    return loading.load_model(name)


def _verify(model, req):
    import importlib.util

    import numpy as np
    from PIL import Image

    from deeplab_keras import assets
    from deeplab_keras.deploy.runtimes import compare
    from deeplab_keras.inference import load_rgb

    runtime = {"litert": "ai_edge_litert", "onnx": "onnxruntime"}.get(req.format)
    if runtime and importlib.util.find_spec(runtime) is None:
        print(f"Not verified: {runtime} is not installed (pip install 'deeplab-keras[export]').")
        return
    images = [load_rgb(p) for p in assets.example_images()]
    if req.input_size:
        h, w = req.input_size
        images = [np.asarray(Image.fromarray(i).resize((w, h), Image.BILINEAR)) for i in images]
    images = np.stack([i for i in images if i.shape == images[0].shape])
    print(f"Checked against the Keras model: {compare(model, req.path, images)}.")


def run():
    import deeplab_keras as dk

    req = request()
    model = _load_model()
    settings = f"{req.format}" + (f", {req.quantize}" if req.quantize != "none" else "")
    print(f"Exporting {cli_flags.MODEL.value} ({settings}) to {req.path} ...")
    dk.export(model, req.path, format=req.format, input_size=req.input_size,
              quantize=req.quantize, calibration_data=req.calibration_data, crf=req.crf)
    print(f"Wrote {req.path} ({disk_size(req.path) / 1e6:.1f} MB).")
    if cli_flags.VERIFY.value:
        _verify(model, req)
    height, width = req.input_size or ("H", "W")
    print("Call it without deeplab_keras:\n    " + HOW_TO_CALL[req.format].format(
        path=req.path, height=height, width=width).replace("\n", "\n    "))
    if req.crf is not None:
        print("    # signatures['serve_crf']: the same outputs after the dense CRF")
    return 0


__all__ = ["check_flags", "request", "run"]
