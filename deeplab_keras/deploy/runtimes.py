"""Run an exported model in its own runtime, and compare it with the Keras model.

`load_exported(path)` returns a callable `images uint8 [B, H, W, 3] -> (labels, probabilities)`
that uses TensorFlow (SavedModel), the `ai-edge-litert` interpreter (`.tflite`) or onnxruntime
(`.onnx`), never deeplab_keras' own layers. `compare(model, path, images)` measures how far an
export is from the model it came from.
"""

import dataclasses
import os

import numpy as np


def _format_of(path):
    if os.path.isdir(path):
        return "tf_saved_model"
    if path.endswith(".tflite"):
        return "litert"
    if path.endswith(".onnx"):
        return "onnx"
    raise ValueError(f"{path!r}: not an export (a SavedModel folder, .tflite or .onnx).")


def _saved_model(path, threads=None):  # TensorFlow's own thread settings apply
    import tensorflow as tf

    serve = tf.saved_model.load(path).signatures["serving_default"]

    def run(images):
        out = serve(images=tf.constant(images, tf.uint8))
        return out["labels"].numpy(), out["probabilities"].numpy()

    return run


def _litert(path, threads=None):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError("Running a .tflite export needs the LiteRT interpreter: pip install "
                          "ai-edge-litert.") from None
    runner = Interpreter(model_path=path, num_threads=threads).get_signature_runner()

    def run(images):
        labels, probabilities = [], []
        for image in images:  # LiteRT exports take a batch of one
            out = runner(images=np.ascontiguousarray(image[None], np.uint8))
            labels.append(out["labels"][0])
            probabilities.append(out["probabilities"][0])
        return np.stack(labels), np.stack(probabilities)

    return run


def _onnx(path, threads=None):
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("Running an .onnx export needs onnxruntime: pip install "
                          "onnxruntime.") from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(images):
        out = dict(zip(names, session.run(None, {"images": np.asarray(images, np.uint8)})))
        return out["labels"], out["probabilities"]

    return run


def load_exported(path, threads=None):
    """A callable `images -> (labels int32 [B, H, W], probabilities float32 [B, H, W, C])`
    running the export at `path` in its runtime (`threads`: LiteRT / onnxruntime CPU threads,
    default the runtime's own choice).

    Example:

    ```python
    run = load_exported("camvid.tflite")
    labels, probabilities = run(image[None])   # uint8 [1, 360, 480, 3]
    ```
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r}: no such export.")
    return {"tf_saved_model": _saved_model, "litert": _litert, "onnx": _onnx}[
        _format_of(path)](path, threads)


@dataclasses.dataclass
class Agreement:
    """How an export's outputs compare with the Keras model's on some images."""

    images: int
    max_probability_diff: float
    label_agreement: float

    def __str__(self):
        return (f"{self.label_agreement:.2%} of pixels labelled alike, max |probability "
                f"difference| {self.max_probability_diff:.2g} on {self.images} image(s)")


def keras_probabilities(model, images):
    """The Keras model's softmax on uint8 images `[B, H, W, 3]` (float32 [B, H, W, C])."""
    from deeplab_keras.evaluation.predict import _call_model
    from deeplab_keras.evaluation.predict import _softmax

    return _softmax(np.concatenate([_call_model(model, image[None].astype(np.float32))
                                    for image in images]))


def compare(model, path, images):
    """An `Agreement` between `model` and the export at `path` on uint8 `images`
    `[B, H, W, 3]` (at the export's input size for litert)."""
    images = np.asarray(images, np.uint8)
    reference = keras_probabilities(model, images)
    labels, probabilities = load_exported(path)(images)
    return Agreement(
        images=len(images),
        max_probability_diff=float(np.abs(probabilities - reference).max()),
        label_agreement=float((labels == reference.argmax(-1)).mean()))


__all__ = ["Agreement", "compare", "keras_probabilities", "load_exported"]
