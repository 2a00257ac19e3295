"""Read and write binary `.caffemodel` files without Caffe (the protobuf wire format is in
`caffe_proto`): layers with their blobs in Caffe layout, and clear errors naming the file for
anything that is not a complete binary caffemodel.

Example:

```python
from deeplab_keras.convert import caffe_files

blobs = caffe_files.read_caffemodel("train_iter_20000.caffemodel")
blobs["fc1_voc12_c0"][0].shape  # (21, 2048, 3, 3)
```
"""

import collections
import os

from deeplab_keras import files
from deeplab_keras.convert import caffe_proto
from deeplab_keras.convert.common import ConversionError


class CaffeModelError(ConversionError):
    """A file that is not a readable binary caffemodel."""


def read_caffemodel_layers(path):
    """All layers of a binary `.caffemodel`, as `caffe_proto.CaffeLayer` records.

    Handles the `layer` (LayerParameter) and legacy `layers`
    (V1LayerParameter) fields, packed and unpacked floats, `double_data`,
    and both `shape` and the legacy num/channels/height/width dims.

    Raises:
        CaffeModelError: naming the file, for empty, truncated or corrupt
            files, text prototxts and zip archives.

    Example:

    ```python
    for layer in read_caffemodel_layers("train2_iter_20000.caffemodel"):
        print(layer.name, layer.type, [b.shape for b in layer.blobs])
    ```
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return parse_caffemodel(data, source=path)


def parse_caffemodel(data, source="<bytes>"):
    """`read_caffemodel_layers` for bytes in memory (e.g. a zip member).

    Args:
        data: the binary caffemodel.
        source: what to call it in error messages (a path, "archive.zip:member").

    Example:

    ```python
    layers = parse_caffemodel(zip_file.read("train2_iter_20000.caffemodel"), source="model.zip")
    report = from_caffemodel(model, layers)
    ```
    """
    _sniff(source, data)
    try:
        _, layers = caffe_proto.parse_net(data)
    except caffe_proto.ProtobufError as e:
        raise CaffeModelError(
            f"{source}: not a valid binary caffemodel ({e}). The file is truncated or corrupt; "
            "download it again (and check its size and sha256).") from None
    if not any(layer.blobs for layer in layers):
        raise CaffeModelError(f"{source}: the file parses but holds no layer with weights. Is "
                              "it a binary .caffemodel (not a solverstate or mean file), and is "
                              "it complete (not truncated)?")
    return layers


def read_caffemodel(path):
    """Weights of a binary `.caffemodel`: `OrderedDict{layer_name: [np.ndarray]}`.

    Only layers with blobs are listed, in file order, each blob in Caffe
    layout and shape (see `read_caffemodel_layers` for types and details).

    Example:

    ```python
    blobs = read_caffemodel("train2_iter_20000.caffemodel")
    blobs["fc1_voc12_c0"][0].shape  # (21, 2048, 3, 3)
    ```
    """
    out = collections.OrderedDict()
    for layer in read_caffemodel_layers(path):
        if not layer.blobs:
            continue
        if layer.name in out:
            raise CaffeModelError(f"{os.fspath(path)}: two layers with weights are named "
                                  f"{layer.name!r}.")
        out[layer.name] = layer.blobs
    return out


def _sniff(path, data):
    if not data:
        raise CaffeModelError(f"{path}: the file is empty.")
    if data[:4] == b"PK\x03\x04":
        raise CaffeModelError(f"{path}: this is a zip archive (e.g. prototxt_and_model.zip); "
                              "extract the .caffemodel from it first.")
    head = data[:256]
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return
    if text.strip() and all(c.isprintable() or c in "\r\n\t" for c in text) and (
            "{" in text or ":" in text):
        raise CaffeModelError(f"{path}: this looks like a text .prototxt (network definition), "
                              "not a binary .caffemodel with weights.")


def guess_layer_type(name):
    """Caffe layer type implied by DeepLab naming.

    `bn*` is BatchNorm, `scale*` is Scale, anything else Convolution.
    """
    if name.startswith("bn"):
        return "BatchNorm"
    if name.startswith("scale"):
        return "Scale"
    return "Convolution"


def write_caffemodel(path, layers, layer_type=None, *, net_name="", v1=False, legacy_dims=False,
                     packed=True, dilations=None):
    """Writes `{layer_name: [arrays]}` as a binary caffemodel, atomically.

    Written from the BVLC caffe.proto field numbers (see `caffe_proto`);
    the file goes to a temporary file in the same folder, is fsynced and
    renamed, so a reader never sees a partial file. Mostly for tests and
    for exporting converted weights back to Caffe tools.

    Args:
        path: output file.
        layers: ordered mapping of layer name to its blobs (Caffe layout).
        layer_type: one type for all layers (e.g. "Convolution"), a mapping
            `{name: type}`, or None to guess from DeepLab naming
            (`guess_layer_type`).
        net_name: `NetParameter.name`.
        v1: write the legacy `layers` (V1LayerParameter) field with enum types.
        legacy_dims: store blob dims as num/channels/height/width.
        packed: packed (Caffe's default) or unpacked repeated floats.
        dilations: optional `{name: rate}` stored as `convolution_param.dilation`.

    Example:

    ```python
    write_caffemodel("tiny.caffemodel", {"conv1_1": [w, b]}, layer_type="Convolution")
    ```
    """
    entries = []
    for name, blobs in layers.items():
        if isinstance(layer_type, dict):
            type_ = layer_type.get(name) or guess_layer_type(name)
        else:
            type_ = layer_type or guess_layer_type(name)
        entries.append((name, type_, list(blobs)))
    payload = caffe_proto.encode_net(entries, net_name=net_name, v1=v1, dilations=dilations,
                                     legacy_dims=legacy_dims, packed=packed)
    path = os.fspath(path)
    files.write_bytes_atomic(path, payload)
    return path


__all__ = ["CaffeModelError", "guess_layer_type", "parse_caffemodel", "read_caffemodel",
           "read_caffemodel_layers", "write_caffemodel"]
