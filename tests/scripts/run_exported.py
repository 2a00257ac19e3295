"""Runs exports the way a deployment does: no deeplab_keras, and no TensorFlow for LiteRT/ONNX.

    python run_exported.py IMAGES.npy OUT.npz EXPORT [EXPORT ...]

Each EXPORT (a SavedModel folder, .tflite or .onnx) runs on every image of IMAGES.npy (uint8
[N, H, W, 3]); OUT.npz gets `<i>_labels` and `<i>_probabilities` per export, plus the SavedModel's
`metadata` signature and a second image size where the format takes any size. Exits non-zero if
deeplab_keras (or, for LiteRT and ONNX, TensorFlow or Keras) was imported.
"""

import json
import os
import sys

import numpy as np


def run_saved_model(path, images, out, key):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    result = loaded.signatures["serving_default"](images=tf.constant(images))
    out[f"{key}_labels"], out[f"{key}_probabilities"] = (result["labels"].numpy(),
                                                         result["probabilities"].numpy())
    crop = images[:1, :200, :300]
    result = loaded.signatures["serving_default"](images=tf.constant(crop))
    out[f"{key}_crop_probabilities"] = result["probabilities"].numpy()
    meta = loaded.signatures["metadata"]()
    out[f"{key}_class_names"] = np.array([n.decode() for n in meta["class_names"].numpy()])
    out[f"{key}_palette"] = meta["palette"].numpy()
    if "serve_crf" in loaded.signatures:
        result = loaded.signatures["serve_crf"](images=tf.constant(images[:1]))
        out[f"{key}_crf_probabilities"] = result["probabilities"].numpy()
    with open(os.path.join(path, "assets.extra", "deeplab_keras.json")) as f:
        out[f"{key}_json_class_names"] = np.array(json.load(f)["class_names"])


def run_litert(path, images, out, key):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner()
    results = [runner(images=image[None]) for image in images]
    out[f"{key}_labels"] = np.concatenate([r["labels"] for r in results])
    out[f"{key}_probabilities"] = np.concatenate([r["probabilities"] for r in results])
    with open(path[: -len(".tflite")] + ".json") as f:
        out[f"{key}_json_class_names"] = np.array(json.load(f)["class_names"])


def run_onnx(path, images, out, key):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    result = dict(zip(names, session.run(None, {"images": images})))
    out[f"{key}_labels"], out[f"{key}_probabilities"] = result["labels"], result["probabilities"]
    crop = np.ascontiguousarray(images[:1, :200, :300])
    out[f"{key}_crop_probabilities"] = session.run(None, {"images": crop})[
        names.index("probabilities")]
    meta = json.loads(session.get_modelmeta().custom_metadata_map["deeplab_keras"])
    out[f"{key}_json_class_names"] = np.array(meta["class_names"])


def main(images_path, out_path, *exports):
    images = np.load(images_path)
    out = {}
    for key, path in enumerate(exports):
        if os.path.isdir(path):
            run_saved_model(path, images, out, key)
        elif path.endswith(".tflite"):
            run_litert(path, images, out, key)
        else:
            run_onnx(path, images, out, key)
    tensorflow_needed = any(os.path.isdir(p) for p in exports)
    # TensorFlow imports keras itself; LiteRT and ONNX must need neither.
    forbidden = ("deeplab_keras",) + (() if tensorflow_needed else ("tensorflow", "keras"))
    imported = [m for m in forbidden if m in sys.modules]
    if imported:
        sys.exit(f"run_exported.py imported {imported}")
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:])
