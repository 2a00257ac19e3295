"""Copy DeepLab v1/v2 `.caffemodel` weights into our models (reading: `caffe_files`).

The authors' release (`prototxt_and_model.zip` of DeepLab v2) names layers as
in its prototxts:

- ResNet-101 (ASPP-L, MSC): `conv1`, `bn_conv1`, `scale_conv1`, then per unit
  `res{S}{U}_branch{1,2a,2b,2c}` with `bn...`/`scale...` twins, units
  `a, b, c` in res2/res5 and `a, b1, b2, ...` in res3/res4; the head is
  `fc1_voc12_c0..c3` (3x3, rates 6/12/18/24, with bias). The MSC training
  net repeats every layer for the 0.75 and 0.5 scales with the suffixes
  `_res075` and `_res05`; they share weights, so those copies are checked
  to be identical and skipped.
- VGG-16: `conv1_1` .. `conv5_3`; LargeFOV head `fc6`, `fc7`, `fc8_voc12`;
  ASPP head `fc6_1..4`, `fc7_1..4`, `fc8_voc12_1..4` (rates 6/12/18/24).

Caffe stores conv weights as [out, in, kh, kw] (Keras: [kh, kw, in, out]),
BatchNorm as (mean, variance, moving-average factor) with eps 1e-5, and the
affine part in a separate Scale layer (gamma, beta). Caffe models take BGR
0..255 images minus the mean (104.008, 116.669, 122.675), which is
`DeepLabV2`'s default input normalisation, so no weight needs a channel flip.
"""

import os
import re
import warnings

import numpy as np

from deeplab_keras.convert import caffe_proto
from deeplab_keras.convert import source_files
from deeplab_keras.convert.caffe_files import guess_layer_type
from deeplab_keras.convert.caffe_files import read_caffemodel_layers
from deeplab_keras.convert.common import ConversionError
from deeplab_keras.convert.common import ConversionReport
from deeplab_keras.convert.common import assign
from deeplab_keras.convert.common import bn_variables
from deeplab_keras.convert.common import check_complete

CAFFE_BN_EPS = 1e-5
_CONV_ROLES = ("weights", "bias")
_BN_ROLES = ("mean", "variance", "factor")
_SCALE_ROLES = ("gamma", "beta")

_STEM = re.compile(r"^(conv1|bn_conv1|scale_conv1)$")
_RES = re.compile(r"^(res|bn|scale)([2-5])(a|b\d+|[b-z])_branch(1|2a|2b|2c)$")
_VGG = re.compile(r"^conv([1-5])_([1-9])$")
_FC1 = re.compile(r"^fc1_([A-Za-z0-9]+)_c(\d+)$")
_FC67 = re.compile(r"^fc([67])(?:_(\d+))?$")
_FC8 = re.compile(r"^fc8_([A-Za-z0-9]+)(?:_(\d+))?$")
_MSC_SCALE_TOKEN = re.compile(r"^res0\d+$")  # "res075", "res05": a scale, never a ResNet stage


class _Slot:
    """A Caffe layer's counterpart in the model: a conv, or the BN/Scale half of a BN."""

    def __init__(self, kind, layer, caffe_name, rate=None, classifier=False):
        self.kind, self.layer, self.caffe_name = kind, layer, caffe_name
        self.rate, self.classifier = rate, classifier

    def plan(self, source, plan, report, where):
        """Appends (variable, value, source_name) to `plan`; records skipped blobs."""
        name, blobs = source.name, source.blobs
        if self.kind == "conv":
            self._plan_conv(name, blobs, source.dilation, plan, where)
        elif self.kind == "bn":
            if len(blobs) != 3:
                raise ConversionError(f"{where}: BatchNorm layer {name!r} has {len(blobs)} blobs; "
                                      "Caffe stores 3 (mean, variance, moving-average factor).")
            factor = np.asarray(blobs[2], np.float64).reshape(-1)
            if factor.size != 1:
                raise ConversionError(f"{where}: {name}/factor should hold 1 value, has "
                                      f"shape {np.shape(blobs[2])}.")
            scale = 0.0 if factor[0] == 0 else 1.0 / factor[0]
            _, _, mean, var = bn_variables(self.layer)
            plan.append((mean, _vector(blobs[0], mean, f"{name}/mean", where) * scale,
                         f"{name}/mean"))
            plan.append((var, _vector(blobs[1], var, f"{name}/variance", where) * scale,
                         f"{name}/variance"))
            report.skipped[f"{name}/factor"] = (
                f"Caffe's moving-average normaliser ({factor[0]:g}): mean and variance were "
                "divided by it")
            eps = source.bn_eps if source.bn_eps is not None else CAFFE_BN_EPS
            if abs(self.layer.epsilon - eps) > 1e-3 * eps:
                warnings.warn(f"{name}: Caffe BN eps is {eps:g} but {self.layer.name} uses "
                              f"{self.layer.epsilon:g}; outputs will differ slightly.")
        else:  # scale
            if len(blobs) != 2:
                raise ConversionError(f"{where}: Scale layer {name!r} has {len(blobs)} blobs; "
                                      "expected 2 (gamma, beta; bias_term: true).")
            gamma, beta, _, _ = bn_variables(self.layer)
            plan.append((gamma, _vector(blobs[0], gamma, f"{name}/gamma", where), f"{name}/gamma"))
            plan.append((beta, _vector(blobs[1], beta, f"{name}/beta", where), f"{name}/beta"))

    def _plan_conv(self, name, blobs, dilation, plan, where):
        conv = self.layer
        if not blobs or len(blobs) > 2:
            raise ConversionError(f"{where}: Convolution layer {name!r} has {len(blobs)} blobs; "
                                  "expected weights and an optional bias.")
        if dilation and self.rate is not None and int(dilation[0]) != self.rate:
            raise ConversionError(
                f"{where}: {name!r} is a rate-{dilation[0]} atrous conv in the file but "
                f"{conv.name} uses rate {self.rate}. Build the model with the file's ASPP "
                "(aspp='L' for rates 6/12/18/24, 'S' for 2/4/8/12, 'LargeFOV' for 12).")
        weights = np.asarray(blobs[0])
        expected = tuple(conv.kernel.shape)
        caffe_shape = (expected[3], expected[2], expected[0], expected[1])
        if weights.shape != caffe_shape:
            raise ConversionError(
                f"{where}: shape mismatch for {name}/weights -> {conv.kernel.path}: file "
                f"{weights.shape} [out, in, kh, kw], model expects {caffe_shape} (Keras "
                f"{expected}). Was the model built with the file's architecture and num_classes?")
        plan.append((conv.kernel, np.transpose(weights, (2, 3, 1, 0)), f"{name}/weights"))
        has_bias = len(blobs) == 2
        if has_bias and conv.bias is None:
            raise ConversionError(f"{where}: {name!r} has a bias blob but {conv.name} has no "
                                  "bias (use_bias=False).")
        if conv.bias is not None and not has_bias:
            raise ConversionError(f"{where}: {name!r} has no bias blob but {conv.name} has a "
                                  "bias; the file and the model differ in architecture.")
        if has_bias:
            plan.append((conv.bias, _vector(blobs[1], conv.bias, f"{name}/bias", where),
                         f"{name}/bias"))


def _vector(blob, variable, source_name, where):
    """A per-channel blob (any legacy padding like (1, 1, 1, C)) as shape (C,)."""
    value = np.asarray(blob)
    (n,) = tuple(variable.shape)
    if value.size != n or (value.ndim and sorted(value.shape)[:-1] != [1] * (value.ndim - 1)):
        raise ConversionError(f"{where}: shape mismatch for {source_name} -> {variable.path}: "
                              f"file {value.shape}, model ({n},).")
    return value.reshape(n).astype(np.float64)


def _unit_label(unit, depth):
    if unit == 0:
        return "a"
    return chr(ord("a") + unit) if depth <= 3 else f"b{unit}"


def _unit_index(label):
    return int(label[1:]) if len(label) > 1 else ord(label) - ord("a")


def _resnet_slots(backbone):
    if getattr(backbone, "stride_in", None) != "1x1":
        raise ConversionError(
            "from_caffemodel: the DeepLab v2 ResNet is the Caffe/MSRA layout with the stride in "
            f"the 1x1 conv; this backbone has stride_in={backbone.stride_in!r}. Use "
            "DeepLabV2(backbone='resnet101').")
    slots = {("stem", "conv"): _Slot("conv", backbone.get_layer("conv1_conv"), "conv1"),
             ("stem", "bn"): _Slot("bn", backbone.get_layer("conv1_bn"), "bn_conv1"),
             ("stem", "scale"): _Slot("scale", backbone.get_layer("conv1_bn"), "scale_conv1")}
    layer_names = {layer.name for layer in backbone.layers}
    for b, depth in enumerate(backbone.depths):
        stage = b + 2
        for u in range(depth):
            prefix, label = f"conv{stage}_block{u + 1}", _unit_label(u, depth)
            for index, branch in enumerate(("1", "2a", "2b", "2c")):
                if f"{prefix}_{index}_conv" not in layer_names:
                    continue
                suffix = f"{stage}{label}_branch{branch}"
                key = ("res", stage, u, branch)
                slots[key + ("conv",)] = _Slot("conv", backbone.get_layer(f"{prefix}_{index}_conv"),
                                               "res" + suffix)
                bn = backbone.get_layer(f"{prefix}_{index}_bn")
                slots[key + ("bn",)] = _Slot("bn", bn, "bn" + suffix)
                slots[key + ("scale",)] = _Slot("scale", bn, "scale" + suffix)
    return slots


def _vgg_slots(backbone):
    slots = {}
    for layer in backbone.layers:
        m = re.match(r"^block(\d)_conv(\d)$", layer.name)
        if m:
            b, c = int(m.group(1)), int(m.group(2))
            slots[("vgg", b, c)] = _Slot("conv", layer, f"conv{b}_{c}")
    return slots


def _head_slots(aspp, tag):
    slots, single = {}, len(aspp.rates) == 1
    for i, (rate, layers) in enumerate(zip(aspp.rates, aspp.branches)):
        if aspp.branch == "resnet":
            slots[("fc1", i)] = _Slot("conv", layers[0], f"fc1_{tag}_c{i}", rate=rate,
                                      classifier=True)
            continue
        suffix = "" if single else f"_{i + 1}"
        slots[("fc6", i)] = _Slot("conv", layers[0], f"fc6{suffix}", rate=rate)
        slots[("fc7", i)] = _Slot("conv", layers[3], f"fc7{suffix}")
        slots[("fc8", i)] = _Slot("conv", layers[6], f"fc8_{tag}{suffix}", classifier=True)
    return slots


def _slots(net, tag):
    backbone = net.backbone
    slots = _resnet_slots(backbone) if hasattr(backbone, "depths") else _vgg_slots(backbone)
    slots.update(_head_slots(net.get_layer("aspp_v2"), tag))
    return slots


def expected_caffe_layers(model, tag="voc12"):
    """The Caffe layer names (with weights) that `from_caffemodel` needs for `model`.

    MSC scale-branch copies (`*_res075`, `*_res05`) are accepted in addition.

    Example:

    ```python
    names = expected_caffe_layers(deeplab_keras.models.DeepLabV2(backbone="resnet101"))
    names[:3]  # ['conv1', 'bn_conv1', 'scale_conv1']
    len(names)  # 316
    ```
    """
    return [slot.caffe_name for slot in _slots(_unwrap(model), tag).values()]


def _parse_name(name):
    """Caffe layer name -> (slot key, dataset tag or None), or None."""
    m = _STEM.match(name)
    if m:
        return ("stem", {"conv1": "conv", "bn_conv1": "bn", "scale_conv1": "scale"}[name]), None
    m = _RES.match(name)
    if m:
        part = {"res": "conv", "bn": "bn", "scale": "scale"}[m.group(1)]
        return ("res", int(m.group(2)), _unit_index(m.group(3)), m.group(4), part), None
    m = _VGG.match(name)
    if m:
        return ("vgg", int(m.group(1)), int(m.group(2))), None
    m = _FC1.match(name)
    if m:
        return ("fc1", int(m.group(2))), m.group(1)
    m = _FC67.match(name)
    if m:
        index = int(m.group(2)) - 1 if m.group(2) else 0
        return (f"fc{m.group(1)}", index), None
    m = _FC8.match(name)
    if m:
        index = int(m.group(2)) - 1 if m.group(2) else 0
        return ("fc8", index), m.group(1)
    return None


def describe_caffe_layers(names):
    """A short guess at what network a list of Caffe layer names is."""
    names = set(names)
    heads_fc1 = sum(1 for n in names if _FC1.match(n))
    heads_fc6 = sum(1 for n in names if _FC67.match(n) and n.startswith("fc6"))
    if "res2a_branch1" in names or "conv1" in names:
        return f"a DeepLab v2 ResNet with {heads_fc1} ASPP branch(es) (fc1_*_c*)"
    if "conv1_1" in names:
        kind = "LargeFOV" if heads_fc6 == 1 else f"ASPP with {heads_fc6} branches"
        return f"a DeepLab VGG-16 {kind}"
    return "not a DeepLab v1/v2 network"


def _unwrap(model):
    from deeplab_keras.models.base import unwrap
    from deeplab_keras.models.deeplab_v2 import DeepLabV2

    net = unwrap(model)
    if not isinstance(net, DeepLabV2):
        raise ConversionError(
            f"from_caffemodel converts into DeepLabV1/DeepLabV2 (optionally wrapped in MSC); "
            f"received {type(model).__name__}.")
    return net


def _load_layers(source):
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source), read_caffemodel_layers(source)
    if isinstance(source, dict):
        layers = [caffe_proto.CaffeLayer(name=k, type=guess_layer_type(k), blobs=list(v))
                  for k, v in source.items()]
        return "the given Caffe blobs", layers
    layers = list(source)
    if not all(isinstance(layer, caffe_proto.CaffeLayer) for layer in layers):
        raise TypeError("from_caffemodel: `source` must be a path, {layer_name: [arrays]} or "
                        "a list of CaffeLayer records.")
    return "the given Caffe layers", layers


def from_caffemodel(model, source, *, member=None, skip_classifier=False):
    """Copies the DeepLab v1/v2 Caffe release's weights into our model.

    `source` may be the file as downloaded: the release's `prototxt_and_model.zip` (give
    `member`, e.g. "train_iter_20000.caffemodel", when it holds several) or a bare
    `.caffemodel` (the v1 LargeFOV release, in Caffe's old V1 format).

    Supported targets (built with the file's `num_classes`):
    `DeepLabV2(backbone="resnet101", aspp="L")` (also wrapped in `MSC`),
    `DeepLabV1()` / `DeepLabV2(backbone="vgg16", aspp="LargeFOV")` and
    `DeepLabV2(backbone="vgg16", aspp="L")`. Every blob in the file is
    mapped exactly once or listed in `report.skipped` with the reason (the
    BN moving-average factors, the MSC scale branches' shared copies), and
    every model weight is filled, or `ConversionError` is raised before any
    weight is changed. Atrous rates stored in the file are checked against
    the model's ASPP.

    Args:
        model: the `DeepLabV2`/`DeepLabV1`/`MSC` model to fill.
        source: path of a binary `.caffemodel` or of a zip holding one,
            `{layer_name: [arrays]}` (as `read_caffemodel` returns) or a list of
            `CaffeLayer`.
        member: the `.caffemodel` inside a zip `source`.
        skip_classifier: leave the class-score convs (`fc1_*_c*` or
            `fc8_*`) untouched and list them as skipped, for fine-tuning
            with another `num_classes`.

    Returns:
        A `ConversionReport`.

    Example:

    ```python
    model = deeplab_keras.models.MSC(
        deeplab_keras.models.DeepLabV2(backbone="resnet101", aspp="L", num_classes=21))
    report = deeplab_keras.convert.from_caffemodel(
        model, "prototxt_and_model.zip", member="train_iter_20000.caffemodel")
    print(report.summary())
    ```
    """
    if isinstance(source, (str, os.PathLike)) and source_files.is_archive(os.fspath(source)):
        with source_files.member_file(source, member, ".caffemodel") as path:
            return from_caffemodel(model, path, skip_classifier=skip_classifier)
    net = _unwrap(model)
    where, layers = _load_layers(source)
    by_name = {}
    for layer in layers:
        if layer.blobs and layer.name in by_name:
            raise ConversionError(f"{where}: two layers with weights are named {layer.name!r}.")
        if layer.blobs:
            by_name[layer.name] = layer
    tags = sorted({t for t in (_parse_name(n)[1] for n in by_name if _parse_name(n)) if t})
    if len(tags) > 1:
        raise ConversionError(f"{where}: class-score layers for several datasets ({tags}); "
                              "keep one set.")
    tag = tags[0] if tags else "voc12"

    slots = _slots(net, tag)

    report, plan, seen, unknown = ConversionReport(), [], {}, []
    for name, layer in by_name.items():
        base, scale = _msc_copy_of(name)
        if base in by_name:
            _skip_shared_copy(layer, by_name[base], scale, report, where)
            continue
        parsed = _parse_name(name)
        slot = slots.get(parsed[0]) if parsed else None
        if slot is None:
            unknown.append(name)
            continue
        if slot in seen:
            raise ConversionError(f"{where}: layers {seen[slot]!r} and {name!r} both map to "
                                  f"{slot.caffe_name!r}.")
        seen[slot] = name
        if skip_classifier and slot.classifier:
            for role, _ in zip(_CONV_ROLES, layer.blobs):
                report.skipped[f"{name}/{role}"] = (
                    "class-score conv: skipped (skip_classifier=True)")
            continue
        slot.plan(layer, plan, report, where)
    if unknown:
        raise ConversionError(
            f"{where}: {len(unknown)} layers with weights have no counterpart in "
            f"{type(net).__name__}({_model_summary(net)}), e.g. {unknown[:6]}. The file is "
            f"{describe_caffe_layers(by_name)}.")
    missing = [s.caffe_name for s in slots.values() if s not in seen]
    if missing:
        raise ConversionError(
            f"{where}: the model needs {len(missing)} Caffe layers the file lacks: "
            f"{missing[:8]}. The file is {describe_caffe_layers(by_name)}; the model is "
            f"{type(net).__name__}({_model_summary(net)}).")

    targets = {}
    for variable, value, source_name in plan:
        if variable.path in targets:
            raise ConversionError(f"{where}: {variable.path} would receive both "
                                  f"{targets[variable.path]!r} and {source_name!r}.")
        targets[variable.path] = source_name
    for variable, value, source_name in plan:
        assign(variable, value, source_name, report)
    if skip_classifier:
        exempt = {v.path for s in slots.values() if s.classifier for v in s.layer.weights}
        missing = [v.path for v in model.weights
                   if v.path not in targets and v.path not in exempt]
        if missing:
            raise ConversionError(f"from_caffemodel: {len(missing)} target weights got no value, "
                                  f"e.g. {missing[:5]}.")
    else:
        check_complete(model, report, "from_caffemodel")
    return report


def _msc_copy_of(name):
    """("res2a_branch1", "0.75") for "res2a_branch1_res075"; (None, None) otherwise."""
    tokens = name.split("_")
    hits = [i for i, t in enumerate(tokens) if _MSC_SCALE_TOKEN.match(t)]
    if len(hits) != 1:
        return None, None
    scale = tokens[hits[0]][3:]
    return "_".join(tokens[:hits[0]] + tokens[hits[0] + 1:]), f"{scale[0]}.{scale[1:]}"


def _skip_shared_copy(layer, original, scale, report, where):
    if len(layer.blobs) != len(original.blobs) or not all(
            np.shape(a) == np.shape(b) and np.array_equal(a, b)
            for a, b in zip(layer.blobs, original.blobs)):
        raise ConversionError(
            f"{where}: {layer.name!r} should be the MSC scale-branch copy of {original.name!r} "
            "(DeepLab's MSC shares one network across scales) but its blobs differ.")
    roles = {"BatchNorm": _BN_ROLES, "Scale": _SCALE_ROLES}.get(original.type, _CONV_ROLES)
    for i in range(len(layer.blobs)):
        role = roles[i] if i < len(roles) else f"blob{i}"
        report.skipped[f"{layer.name}/{role}"] = (
            f"identical copy of {original.name}/{role} in the MSC scale-{scale} branch "
            "(weights are shared across scales)")


def _model_summary(net):
    config = net.get_config()
    return ", ".join(f"{k}={config[k]!r}" for k in ("backbone", "aspp", "num_classes")
                     if k in config)


__all__ = ["describe_caffe_layers", "expected_caffe_layers", "from_caffemodel"]
