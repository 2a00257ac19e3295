"""Protobuf wire format for the subset of BVLC `caffe.proto` a `.caffemodel` needs.

Reads and writes `NetParameter` messages without Caffe or the protobuf
package. Field numbers (BVLC `src/caffe/proto/caffe.proto`):

- `NetParameter`: name = 1, layers (V1LayerParameter) = 2, layer (LayerParameter) = 100.
- `LayerParameter`: name = 1, type = 2 (string), blobs = 7, convolution_param = 106,
  batch_norm_param = 139.
- `V1LayerParameter`: name = 4, type = 5 (enum LayerType), blobs = 6,
  convolution_param = 10, layer (V0LayerParameter) = 1.
- `V0LayerParameter`: name = 1, type = 2 (string), blobs = 50.
- `BlobProto`: num = 1, channels = 2, height = 3, width = 4 (legacy 4-D dims),
  data = 5 (packed float), diff = 6, shape (BlobShape) = 7, double_data = 8.
- `BlobShape`: dim = 1 (packed int64).
- `ConvolutionParameter`: dilation = 18. `BatchNormParameter`: eps = 3.

Repeated numbers are read both packed and unpacked, as proto2 parsers must.
Fields outside this subset are skipped by wire type.
"""

import dataclasses

import numpy as np

NET_NAME, NET_LAYERS_V1, NET_LAYER = 1, 2, 100
LAYER_NAME, LAYER_TYPE, LAYER_BLOBS, LAYER_CONV_PARAM, LAYER_BN_PARAM = 1, 2, 7, 106, 139
V1_V0_LAYER, V1_NAME, V1_TYPE, V1_BLOBS, V1_CONV_PARAM = 1, 4, 5, 6, 10
V0_NAME, V0_TYPE, V0_BLOBS = 1, 2, 50
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH = 1, 2, 3, 4
BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA = 5, 7, 8
SHAPE_DIM = 1
CONV_DILATION = 18
BN_EPS = 3

WIRE_VARINT, WIRE_I64, WIRE_LEN, WIRE_I32 = 0, 1, 2, 5

# V1LayerParameter.LayerType (BVLC caffe.proto).
V1_LAYER_TYPES = {
    0: "None", 35: "AbsVal", 1: "Accuracy", 30: "ArgMax", 2: "BNLL", 3: "Concat",
    37: "ContrastiveLoss", 4: "Convolution", 5: "Data", 39: "Deconvolution", 6: "Dropout",
    32: "DummyData", 7: "EuclideanLoss", 25: "Eltwise", 38: "Exp", 8: "Flatten",
    9: "HDF5Data", 10: "HDF5Output", 28: "HingeLoss", 11: "Im2col", 12: "ImageData",
    13: "InfogainLoss", 14: "InnerProduct", 15: "LRN", 29: "MemoryData",
    16: "MultinomialLogisticLoss", 34: "MVN", 17: "Pooling", 26: "Power", 18: "ReLU",
    19: "Sigmoid", 27: "SigmoidCrossEntropyLoss", 36: "Silence", 20: "Softmax",
    21: "SoftmaxWithLoss", 22: "Split", 33: "Slice", 23: "TanH", 24: "WindowData",
    31: "Threshold",
}
V1_TYPE_IDS = {name: number for number, name in V1_LAYER_TYPES.items()}


class ProtobufError(ValueError):
    """Bytes that are not a valid (or complete) message of the expected type."""


@dataclasses.dataclass
class CaffeLayer:
    """One layer of a caffemodel: its name, type and parameter blobs.

    Attributes:
        name: layer name, e.g. "res2a_branch2a".
        type: "Convolution", "BatchNorm", "Scale", ... (V1 enums are mapped
            to these names).
        blobs: list of float numpy arrays in Caffe layout.
        dilation: `convolution_param.dilation` values stored in the file, if any.
        bn_eps: `batch_norm_param.eps` stored in the file, if any.
    """

    name: str
    type: str
    blobs: list
    dilation: tuple = ()
    bn_eps: float = None


# ----------------------------------------------------------------------------- reading


def _varint(buf, pos, end):
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtobufError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError(f"varint longer than 10 bytes at byte {pos}")


def _next_field(buf, pos, end):
    """Returns (field, wire, value, next_pos); value is an int or a (start, stop) span."""
    key, pos = _varint(buf, pos, end)
    field, wire = key >> 3, key & 7
    if field == 0:
        raise ProtobufError(f"field number 0 at byte {pos}")
    if wire == WIRE_VARINT:
        value, pos = _varint(buf, pos, end)
        return field, wire, value, pos
    if wire == WIRE_LEN:
        length, pos = _varint(buf, pos, end)
        if pos + length > end:
            raise ProtobufError(f"field {field} at byte {pos} declares {length} bytes but only "
                                f"{end - pos} remain (truncated file?)")
        return field, wire, (pos, pos + length), pos + length
    width = {WIRE_I64: 8, WIRE_I32: 4}.get(wire)
    if width is None:
        raise ProtobufError(f"unsupported wire type {wire} for field {field} at byte {pos}")
    if pos + width > end:
        raise ProtobufError(f"truncated {width}-byte field {field} at byte {pos}")
    return field, wire, (pos, pos + width), pos + width


def _packed(buf, span, itemsize, dtype, what):
    """The packed repeated numbers in `buf[span[0]:span[1]]` as a numpy view."""
    start, end = span
    if (end - start) % itemsize:
        raise ProtobufError(f"{what} of {end - start} bytes")
    return np.frombuffer(buf, dtype, count=(end - start) // itemsize, offset=start)


def _fixed_run(buf, first, pos, end, tag, width, dtype):
    """An unpacked repeated float/double: the first value at `first`, more records
    `tag + value` may follow from `pos`. Read all consecutive ones at once."""
    record = len(tag) + width
    count = (end - pos) // record
    run = 0
    if count:
        rows = np.frombuffer(buf, np.uint8, count=count * record, offset=pos).reshape(count, record)
        keys = rows[:, :len(tag)]
        mismatch = np.flatnonzero(np.any(keys != np.frombuffer(tag, np.uint8), axis=1))
        run = int(mismatch[0]) if mismatch.size else count
    values = np.empty(run + 1, dtype)
    values[0] = np.frombuffer(buf, dtype, count=1, offset=first)[0]
    if run:
        values[1:] = np.ascontiguousarray(rows[:run, len(tag):]).view(dtype).reshape(run)
    return values, pos + run * record


def _packed_varints(buf, start, stop):
    values, pos = [], start
    while pos < stop:
        value, pos = _varint(buf, pos, stop)
        values.append(value)
    return values


def _int64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _string(buf, span):
    return bytes(buf[span[0]:span[1]]).decode("utf-8", errors="replace")


def parse_blob(buf, start, stop, where="blob"):
    """Decodes a `BlobProto` into a numpy array of its shape."""
    floats, doubles, dims, legacy = [], [], None, {}
    pos = start
    while pos < stop:
        field, wire, value, pos = _next_field(buf, pos, stop)
        if field == BLOB_DATA and wire == WIRE_LEN:
            floats.append(_packed(buf, value, 4, "<f4", f"{where}: packed float data"))
        elif field == BLOB_DATA and wire == WIRE_I32:
            run, pos = _fixed_run(buf, value[0], pos, stop, b"\x2d", 4, "<f4")
            floats.append(run)
        elif field == BLOB_DOUBLE_DATA and wire == WIRE_LEN:
            doubles.append(_packed(buf, value, 8, "<f8", f"{where}: packed double data"))
        elif field == BLOB_DOUBLE_DATA and wire == WIRE_I64:
            run, pos = _fixed_run(buf, value[0], pos, stop, b"\x41", 8, "<f8")
            doubles.append(run)
        elif field == BLOB_SHAPE and wire == WIRE_LEN:
            dims = _parse_shape(buf, *value, where)
        elif field in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH) and wire == WIRE_VARINT:
            legacy[field] = _int64(value)
        elif field in (BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA, BLOB_NUM, BLOB_CHANNELS,
                       BLOB_HEIGHT, BLOB_WIDTH):
            raise ProtobufError(f"{where}: field {field} has wire type {wire}")
    if floats:
        data = np.concatenate(floats).astype(np.float32)
    elif doubles:
        data = np.concatenate(doubles).astype(np.float64)
    else:
        data = np.zeros(0, np.float32)
    if dims is None:
        if legacy:
            dims = tuple(legacy.get(f, 0) for f in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT,
                                                     BLOB_WIDTH))
        else:
            dims = (data.size,)
    if min(dims, default=0) < 0:
        raise ProtobufError(f"{where}: negative dimension in shape {dims}")
    if int(np.prod(dims, dtype=np.int64)) != data.size:
        raise ProtobufError(f"{where}: shape {tuple(dims)} needs {int(np.prod(dims))} values "
                            f"but {data.size} are stored")
    return data.reshape(dims)


def _parse_shape(buf, start, stop, where):
    dims, pos = [], start
    while pos < stop:
        field, wire, value, pos = _next_field(buf, pos, stop)
        if field == SHAPE_DIM and wire == WIRE_LEN:
            dims.extend(_int64(v) for v in _packed_varints(buf, *value))
        elif field == SHAPE_DIM and wire == WIRE_VARINT:
            dims.append(_int64(value))
        elif field == SHAPE_DIM:
            raise ProtobufError(f"{where}: BlobShape.dim has wire type {wire}")
    return tuple(dims)


def _parse_uint_list(buf, span, field_number):
    values, pos = [], span[0]
    while pos < span[1]:
        field, wire, value, pos = _next_field(buf, pos, span[1])
        if field == field_number and wire == WIRE_LEN:
            values.extend(_packed_varints(buf, *value))
        elif field == field_number and wire == WIRE_VARINT:
            values.append(value)
    return tuple(values)


def _parse_float_field(buf, span, field_number):
    pos, result = span[0], None
    while pos < span[1]:
        field, wire, value, pos = _next_field(buf, pos, span[1])
        if field == field_number and wire == WIRE_I32:
            result = float(np.frombuffer(buf, "<f4", count=1, offset=value[0])[0])
    return result


def _parse_layer(buf, start, stop, index, v1):
    name_field, type_field, blobs_field, conv_field = (
        (V1_NAME, V1_TYPE, V1_BLOBS, V1_CONV_PARAM) if v1
        else (LAYER_NAME, LAYER_TYPE, LAYER_BLOBS, LAYER_CONV_PARAM))
    name, type_, spans, dilation, bn_eps, v0 = None, "", [], (), None, None
    pos = start
    while pos < stop:
        field, wire, value, pos = _next_field(buf, pos, stop)
        if field == name_field and wire == WIRE_LEN:
            name = _string(buf, value)
        elif field == type_field and v1 and wire == WIRE_VARINT:
            type_ = V1_LAYER_TYPES.get(value, f"V1LayerType{value}")
        elif field == type_field and not v1 and wire == WIRE_LEN:
            type_ = _string(buf, value)
        elif field == blobs_field and wire == WIRE_LEN:
            spans.append(value)
        elif field == conv_field and wire == WIRE_LEN:
            dilation = _parse_uint_list(buf, value, CONV_DILATION)
        elif not v1 and field == LAYER_BN_PARAM and wire == WIRE_LEN:
            bn_eps = _parse_float_field(buf, value, BN_EPS)
        elif v1 and field == V1_V0_LAYER and wire == WIRE_LEN:
            v0 = value
    if v0 is not None:  # very old files keep name, type and blobs in a nested V0 layer
        pos = v0[0]
        while pos < v0[1]:
            field, wire, value, pos = _next_field(buf, pos, v0[1])
            if field == V0_NAME and wire == WIRE_LEN and name is None:
                name = _string(buf, value)
            elif field == V0_TYPE and wire == WIRE_LEN and not type_:
                type_ = _string(buf, value)
            elif field == V0_BLOBS and wire == WIRE_LEN:
                spans.append(value)
    name = name if name is not None else f"<unnamed layer {index}>"
    blobs = [parse_blob(buf, s, e, where=f"layer {name!r} blob {i}")
             for i, (s, e) in enumerate(spans)]
    return CaffeLayer(name=name, type=type_, blobs=blobs, dilation=dilation, bn_eps=bn_eps)


def parse_net(buf):
    """Decodes a binary `NetParameter`; returns (net name, [CaffeLayer])."""
    net_name, layers, pos, end = "", [], 0, len(buf)
    while pos < end:
        field, wire, value, pos = _next_field(buf, pos, end)
        if field == NET_NAME and wire == WIRE_LEN:
            net_name = _string(buf, value)
        elif field in (NET_LAYER, NET_LAYERS_V1) and wire == WIRE_LEN:
            layers.append(_parse_layer(buf, *value, index=len(layers), v1=field == NET_LAYERS_V1))
        elif field in (NET_LAYER, NET_LAYERS_V1):
            raise ProtobufError(f"NetParameter field {field} has wire type {wire}")
    return net_name, layers


# ----------------------------------------------------------------------------- writing


def _encode_varint(value):
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field, wire):
    return _encode_varint(field << 3 | wire)


def _len_field(field, payload):
    return _key(field, WIRE_LEN) + _encode_varint(len(payload)) + payload


def encode_blob(array, legacy_dims=False, packed=True, double=False):
    """Encodes an array as a `BlobProto`.

    Args:
        array: numeric array in Caffe layout.
        legacy_dims: write the deprecated num/channels/height/width fields
            (shapes of up to 4 dims, left-padded with 1s as old Caffe did)
            instead of `shape`.
        packed: packed repeated floats (what Caffe writes) or one field per value.
        double: store `double_data` instead of float `data`.
    """
    array = np.asarray(array)
    out = bytearray()
    if legacy_dims:
        if array.ndim > 4:
            raise ValueError(f"legacy 4-D blob dims cannot hold shape {array.shape}")
        dims = (1,) * (4 - array.ndim) + tuple(array.shape)
        for field, dim in zip((BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH), dims):
            out += _key(field, WIRE_VARINT) + _encode_varint(int(dim))
    else:
        dims = b"".join(_encode_varint(int(d)) for d in array.shape)
        out += _len_field(BLOB_SHAPE, _len_field(SHAPE_DIM, dims) if array.ndim else b"")
    field, dtype, wire, width = ((BLOB_DOUBLE_DATA, "<f8", WIRE_I64, 8) if double
                                 else (BLOB_DATA, "<f4", WIRE_I32, 4))
    values = np.ascontiguousarray(array.reshape(-1), dtype=dtype)
    if packed:
        if values.size:
            out += _len_field(field, values.tobytes())
    elif values.size:
        key = _key(field, wire)
        records = np.empty((values.size, len(key) + width), np.uint8)
        records[:, :len(key)] = np.frombuffer(key, np.uint8)
        records[:, len(key):] = values.view(np.uint8).reshape(values.size, width)
        out += records.tobytes()
    return bytes(out)


def encode_layer(name, layer_type, blobs, v1=False, dilation=None, **blob_options):
    """Encodes one `LayerParameter` (or `V1LayerParameter` with `v1=True`)."""
    if v1:
        if layer_type not in V1_TYPE_IDS:
            raise ValueError(f"V1LayerParameter has no type {layer_type!r}; V1 types are "
                             f"{sorted(V1_TYPE_IDS)}")
        out = _len_field(V1_NAME, name.encode()) + _key(V1_TYPE, WIRE_VARINT) + _encode_varint(
            V1_TYPE_IDS[layer_type])
        blob_field, conv_field = V1_BLOBS, V1_CONV_PARAM
    else:
        out = _len_field(LAYER_NAME, name.encode()) + _len_field(LAYER_TYPE, layer_type.encode())
        blob_field, conv_field = LAYER_BLOBS, LAYER_CONV_PARAM
    if dilation is not None:
        out += _len_field(conv_field, _len_field(CONV_DILATION, _encode_varint(int(dilation))))
    for blob in blobs:
        out += _len_field(blob_field, encode_blob(blob, **blob_options))
    return out


def encode_net(layers, net_name="", v1=False, dilations=None, **blob_options):
    """Encodes a `NetParameter` from `[(name, type, [arrays])]`."""
    dilations = dilations or {}
    out = bytearray(_len_field(NET_NAME, net_name.encode()) if net_name else b"")
    for name, layer_type, blobs in layers:
        payload = encode_layer(name, layer_type, blobs, v1=v1, dilation=dilations.get(name),
                               **blob_options)
        out += _len_field(NET_LAYERS_V1 if v1 else NET_LAYER, payload)
    return bytes(out)
