"""SavedModel export: any batch and image size, class names and palette inside, optional CRF.

Built on `keras.export.ExportArchive` (what `model.export(format="tf_saved_model")` uses). The
folder holds:

- signature `serving_default` (endpoint `serve`): `images` uint8 `[B, H, W, 3]` ->
  `labels` int32 `[B, H, W]`, `probabilities` float32 `[B, H, W, C]`;
- signature `serve_crf` (with `crf=`): the same after the dense CRF;
- signature `metadata`: `class_names` (string `[C]`) and `palette`
  (uint8 `[C, 3]`), also in `assets.extra/deeplab_keras.json`.
"""

import json
import os

from deeplab_keras.deploy.serving import serving_model

# TensorFlow ops the CRF signature adds to the plain one (tests/test_export_formats.py checks
# the exported graph against this list). All are TensorFlow core ops: TF Serving and
# `tf.saved_model.load` run the signature without custom ops; LiteRT and ONNX have no
# equivalents for several of them (TensorList*, UnsortedSegmentMax/Min, LowerBound, Unique).
CRF_EXTRA_OPS = frozenset((
    "AddN", "All", "Assert", "Cumprod", "Cumsum", "Equal", "Exp", "ExpandDims", "Fill",
    "FloorDiv", "Greater", "GreaterEqual", "If", "LeftShift", "Log", "LogSoftmax", "LogicalAnd",
    "LowerBound", "MatMul", "Max", "Min", "Neg", "OneHot", "PartitionedCall", "Prod", "Round",
    "ScatterNd", "SparseTensorDenseMatMul", "Sqrt", "StopGradient", "Sum", "TensorListFromTensor",
    "TensorListGetItem", "TensorListReserve", "TensorListSetItem", "TensorListStack", "Tile",
    "TopKV2", "Unique", "Unpack", "UnsortedSegmentMax", "UnsortedSegmentMin", "While",
    "ZerosLike"))


def export_saved_model(model, request, metadata, crf_layer=None):
    """Writes the SavedModel folder at `request.path` atomically."""
    import keras
    import tensorflow as tf

    from deeplab_keras.files import atomic_dir

    size = request.input_size or (None, None)
    spec = [tf.TensorSpec((None, size[0], size[1], 3), tf.uint8, name="images")]
    serving = serving_model(model, request.input_size)
    archive = keras.export.ExportArchive()
    # Not `archive.track(serving)`: it saves every weight a second time (as the Keras variables
    # besides the TensorFlow variables the endpoints capture), doubling the folder's size.
    archive.add_endpoint("serve", serving.call, input_signature=spec)
    if crf_layer is not None:
        refined = serving_model(model, request.input_size, crf_layer=crf_layer)
        archive.add_endpoint("serve_crf", refined.call, input_signature=spec)
    names = tf.constant(metadata["class_names"], tf.string)
    palette = tf.constant(metadata["palette"], tf.uint8)
    archive.add_endpoint("metadata", tf.function(
        lambda: {"class_names": names, "palette": palette}, input_signature=[]))
    with atomic_dir(request.path) as tmp:
        archive.write_out(tmp, verbose=False)
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, "assets.extra", "deeplab_keras.json"), "w",
                  encoding="utf-8") as f:
            json.dump(metadata, f, indent=2)
    return request.path


__all__ = ["CRF_EXTRA_OPS", "export_saved_model"]
