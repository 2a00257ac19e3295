"""Read an official Caffe prototxt (text format) and compute, from the network definition alone,
every weighted layer's blob shapes and every blob's spatial size, with Caffe's own formulas.

Test support for tests/test_official_prototxt.py: the reference comes from the release's files,
never from our model.
"""

import re

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|([A-Za-z_][\w.]*)|("(?:[^"\\]|\\.)*"|\'[^\']*\')|'
                    r'(-?[\d.]+(?:[eE][-+]?\d+)?)|([{}:]))')


def parse(text, variables=None):
    """Protobuf text format -> list of (field, value); a message value is such a list.

    The release's prototxts are templates (`${NUM_LABELS}`, `${EXP}`): `variables` fills them.
    """
    variables = {"NUM_LABELS": 21, "EXP": "voc12", **(variables or {})}
    text = re.sub(r"\$\{(\w+)\}", lambda m: str(variables.get(m.group(1), m.group(0))), text)
    tokens = []
    for match in _TOKEN.finditer(text):
        comment, ident, string, number, punct = match.groups()
        if comment:
            continue
        if ident is not None:
            tokens.append(("ident", ident))
        elif string is not None:
            tokens.append(("value", string[1:-1]))
        elif number is not None:
            tokens.append(("value", float(number) if "." in number or "e" in number.lower()
                           else int(number)))
        elif punct:
            tokens.append(("punct", punct))
    fields, pos = _message(tokens, 0)
    assert pos == len(tokens), f"unparsed tokens from {tokens[pos]}"
    return fields


def _message(tokens, pos):
    fields = []
    while pos < len(tokens) and tokens[pos] != ("punct", "}"):
        kind, name = tokens[pos]
        assert kind == "ident", f"expected a field name, got {tokens[pos]}"
        pos += 1
        if tokens[pos] == ("punct", ":"):
            pos += 1
        if tokens[pos] == ("punct", "{"):
            value, pos = _message(tokens, pos + 1)
            pos += 1  # "}"
        else:
            kind, value = tokens[pos]
            pos += 1
        fields.append((name, value))
    return fields, pos


def get(message, name, default=None):
    values = [v for k, v in message if k == name]
    return values[0] if values else default


def get_all(message, name):
    return [v for k, v in message if k == name]


# V1 (`layers`, enum types) -> V2 type names.
_V1_TYPES = {"CONVOLUTION": "Convolution", "POOLING": "Pooling", "RELU": "ReLU",
             "DROPOUT": "Dropout", "INTERP": "Interp", "ELTWISE": "Eltwise",
             "BATCHNORM": "BatchNorm", "SCALE": "Scale"}


def layers(net):
    """The layers of a parsed net as dicts: name, type, bottoms, tops, params, param_names."""
    out = []
    for field, layer in net:
        if field not in ("layer", "layers"):
            continue
        kind = get(layer, "type")
        out.append(dict(name=get(layer, "name"), type=_V1_TYPES.get(kind, kind),
                        bottoms=get_all(layer, "bottom"), tops=get_all(layer, "top"),
                        conv=get(layer, "convolution_param", []),
                        pool=get(layer, "pooling_param", []),
                        interp=get(layer, "interp_param", []),
                        scale=get(layer, "scale_param", []),
                        param_names=[get(p, "name") for p in get_all(layer, "param")],
                        phase=[get(i, "phase") for i in get_all(layer, "include")]))
    return out


def conv_geometry(conv):
    kernel = get(conv, "kernel_size")
    stride = get(conv, "stride", 1)
    pad = get(conv, "pad", 0)
    dilation = get(conv, "dilation", get(conv, "hole", 1))
    return kernel, stride, pad, dilation


def pooled(n, kernel, stride, pad):
    """Caffe's PoolingLayer size: rounded up, minus one if the last window starts in padding."""
    out = -(-(n + 2 * pad - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= n + pad else out


def interp(n, interp_param):
    """DeepLab Caffe's Interp size: shrink first, then zoom."""
    shrink, zoom = get(interp_param, "shrink_factor", 1), get(interp_param, "zoom_factor", 1)
    n = (n - 1) // shrink + 1
    return n + (n - 1) * (zoom - 1)


def analyse(net, size, phase="TEST"):
    """Walks the net on a `size` x `size` RGB input.

    Returns `(blob_shapes, sizes, mismatches)`: `{layer: [blob shapes]}` for every layer with
    weights (in Caffe layout), `{blob: spatial size}` after every layer, and the Eltwise layers
    whose inputs differ in size (which Caffe itself would refuse to run).
    """
    channels, sizes, shapes, mismatches = {}, {}, {}, []
    for layer in layers(net):
        if layer["phase"] and phase not in layer["phase"]:
            continue
        kind, name = layer["type"], layer["name"]
        tops, bottoms = layer["tops"], layer["bottoms"]
        if kind in ("ImageSegData", "IMAGE_SEG_DATA"):
            channels[tops[0]], sizes[tops[0]] = 3, size
            continue
        if not bottoms or any(b not in sizes for b in bottoms):
            continue  # label branches, silence, loss, ...
        c, n = channels[bottoms[0]], sizes[bottoms[0]]
        if kind == "Convolution":
            kernel, stride, pad, dilation = conv_geometry(layer["conv"])
            out_c = get(layer["conv"], "num_output")
            shapes[name] = [(out_c, c, kernel, kernel)]
            if get(layer["conv"], "bias_term", "true") not in (False, "false"):
                shapes[name].append((out_c,))
            effective = dilation * (kernel - 1) + 1
            c, n = out_c, (n + 2 * pad - effective) // stride + 1
        elif kind == "Pooling":
            p = layer["pool"]
            n = pooled(n, get(p, "kernel_size"), get(p, "stride", 1), get(p, "pad", 0))
        elif kind == "Interp":
            n = interp(n, layer["interp"])
        elif kind == "BatchNorm":
            shapes[name] = [(c,), (c,), (1,)]
        elif kind == "Scale":
            shapes[name] = [(c,)] + ([(c,)] if get(layer["scale"], "bias_term") in (
                True, "true") else [])
        elif kind == "Eltwise":
            if len({sizes[b] for b in bottoms}) > 1:
                mismatches.append((name, [sizes[b] for b in bottoms]))
        elif kind not in ("ReLU", "Dropout"):
            continue
        for top in tops:
            channels[top], sizes[top] = c, n
    return shapes, sizes, mismatches


def shared_params(net):
    """`{param name: [(layer, blob index)]}` for layers that share weights by param name."""
    owners = {}
    for layer in layers(net):
        for i, param in enumerate(layer["param_names"]):
            if param:
                owners.setdefault(param, []).append((layer["name"], i))
    return owners
