"""ONNX export (opset `options.ONNX_OPSET`): dynamic batch and image size unless `input_size`.

Built on `model.export(format="onnx")` (Keras' exporter, tf2onnx on TensorFlow). Class names,
palette and settings are stored in the file's `metadata_props` (key "deeplab_keras", JSON).
"""

import json

from deeplab_keras.deploy.options import ONNX_OPSET
from deeplab_keras.deploy.serving import serving_model


def export_onnx(model, request, metadata):
    """Writes the `.onnx` file atomically."""
    import contextlib
    import io

    import onnx
    import tensorflow as tf

    from deeplab_keras.files import atomic_path

    size = request.input_size or (None, None)
    spec = [tf.TensorSpec((None, size[0], size[1], 3), tf.uint8, name="images")]
    serving = serving_model(model, request.input_size)
    with atomic_path(request.path) as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            serving.export(tmp, format="onnx", input_signature=spec, verbose=False,
                           opset_version=ONNX_OPSET)
        graph = onnx.load(tmp)
        explicit_same_padding(graph)
        entry = graph.metadata_props.add()
        entry.key, entry.value = "deeplab_keras", json.dumps(metadata)
        onnx.save(graph, tmp)
    return request.path


def explicit_same_padding(graph):
    """Rewrites stride-1 dilated `Conv` nodes from `auto_pad=SAME_*` to explicit `pads`.

    tf2onnx writes TensorFlow's SAME padding as `auto_pad` when the image size is unknown, and
    onnxruntime refuses `auto_pad` with dilation. At stride 1 SAME padding does not depend on
    the image size: `(k - 1) * d` in total per axis, the odd pixel at the end (SAME_UPPER).
    Returns the number of nodes rewritten.
    """
    from onnx import helper
    from onnx import numpy_helper

    weights = {t.name: numpy_helper.to_array(t).shape for t in graph.graph.initializer}
    rewritten = 0
    for node in graph.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        dilations = list(attrs.get("dilations", []))
        if auto_pad not in ("SAME_UPPER", "SAME_LOWER") or max(dilations, default=1) == 1:
            continue
        strides = list(attrs.get("strides", [1] * len(dilations)))
        kernel = list(attrs.get("kernel_shape") or weights.get(node.input[1], ())[2:])
        if max(strides) != 1 or len(kernel) != len(dilations):
            continue
        totals = [(k - 1) * d for k, d in zip(kernel, dilations)]
        small = [t // 2 for t in totals]
        large = [t - s for t, s in zip(totals, small)]
        begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
        kept = [a for a in node.attribute if a.name not in ("auto_pad", "pads")]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute("pads", begin + end)])
        rewritten += 1
    return rewritten


__all__ = ["explicit_same_padding", "export_onnx"]
