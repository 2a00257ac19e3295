"""Copy TF research/deeplab model-zoo checkpoints (TF1, TF-slim names) into our models.

Handles `DeepLabV3Plus(backbone="xception65")` (the Xception-65 VOC,
Cityscapes and ADE20K tarballs) and `DeepLabV3(backbone="mobilenetv2")`
(`deeplabv3_mnv2_pascal_train_aug`). Name patterns, with `<bn>` one of
`BatchNorm/{gamma,beta,moving_mean,moving_variance}`:

- backbone: `xception_65/<scope>/{weights,depthwise_weights,<bn>}` and
  `MobilenetV2/<scope>/...`; the backbones name their layers after the scope
  with "/" replaced by "_" (`entry_flow/block1/unit_1/xception_module/
  separable_conv1_depthwise` -> layer `entry_flow_block1_unit_1_xception_module_
  separable_conv1_depthwise`, its batch norm `..._depthwise_BatchNorm`);
- ASPP: `image_pooling`, `aspp0`, `aspp{i}` (plain 3x3) or
  `aspp{i}_depthwise` + `aspp{i}_pointwise` (separable), `concat_projection`;
- decoder: `decoder/feature_projection0`, `decoder/decoder_conv{0,1}_depthwise`
  + `_pointwise` (separable) or `decoder/decoder_conv0/decoder_conv0_{1,2}`
  (plain, `slim.repeat`);
- logits: `logits/semantic/{weights,biases}`;
- skipped and listed: `global_step`, optimizer slots (`.../Momentum`, Adam,
  RMSProp) and Adam's `beta{1,2}_power`.

TF concatenates the image-pooling branch first; a model built with
`pooling_first=False` gets the projection kernel's input blocks reordered, so
both orders convert exactly. Kernels need no transposition: TF-slim's conv
kernels are HWIO and depthwise kernels `[kh, kw, in, multiplier]`, as in Keras.
"""

import collections
import collections.abc
import os
import re

import numpy as np

from deeplab_keras.convert import source_files
from deeplab_keras.convert.common import ConversionError
from deeplab_keras.convert.common import ConversionReport
from deeplab_keras.convert.common import assign
from deeplab_keras.convert.common import check_complete

BACKBONE_SCOPES = {"XceptionBackbone": "xception_65", "MobileNetV2Backbone": "MobilenetV2"}
_FIELDS = {"weights": "kernel", "depthwise_weights": "depthwise_kernel", "biases": "bias",
           "gamma": "gamma", "beta": "beta", "moving_mean": "moving_mean",
           "moving_variance": "moving_variance"}
_OPTIMIZER_SLOT = re.compile(r"/(Momentum|Adam|Adam_1|RMSProp|RMSProp_1|Adagrad|Ftrl|Ftrl_1)$")
_ASPP_BRANCH = re.compile(r"^aspp(\d+)(_depthwise|_pointwise)?$")
_DECODER_SEPARABLE = re.compile(r"^decoder/decoder_conv([01])_(depthwise|pointwise)$")
_DECODER_PLAIN = re.compile(r"^decoder/decoder_conv0/decoder_conv0_([12])$")


def read_tf_checkpoint(checkpoint):
    """Opens a TF1 (or any name-based TF) checkpoint as a lazy `{name: np.ndarray}` mapping.

    Needs TensorFlow. Accepts the checkpoint prefix (`.../model.ckpt`), its
    `.index` or `.data-*` file, or the directory a model-zoo tarball
    extracts to.

    Example:

    ```python
    variables = read_tf_checkpoint("deeplabv3_pascal_train_aug/model.ckpt")
    variables["logits/semantic/weights"].shape  # (1, 1, 256, 21)
    ```
    """
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ImportError(
            "Reading a TF1 checkpoint needs TensorFlow (`pip install tensorflow`); it is not "
            "installed. On a machine with TensorFlow, dump it with "
            "`np.savez(out, **read_tf_checkpoint(prefix))` and pass `dict(np.load(out))` "
            "to from_tf_checkpoint here.") from e
    prefix = _resolve_prefix(os.fspath(checkpoint), tf)
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
    except Exception as e:  # NotFoundError, DataLossError, ...
        raise ConversionError(
            f"TensorFlow cannot read the checkpoint {prefix!r} ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). It needs both {prefix}.index and "
            f"{prefix}.data-*; extract the tarball again if either is missing or truncated."
        ) from e
    return _LazyCheckpoint(reader, names, prefix)


class _LazyCheckpoint(collections.abc.Mapping):
    """Tensors are read one at a time, so a 440 MB checkpoint is never held twice."""

    def __init__(self, reader, names, prefix):
        self._reader, self._names, self.prefix = reader, names, prefix

    def __getitem__(self, name):
        if name not in self._names:
            raise KeyError(name)
        try:
            return self._reader.get_tensor(name)
        except Exception as e:
            raise ConversionError(f"{self.prefix}: cannot read {name!r}: {e}") from e

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


def _resolve_prefix(path, tf):
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        indexes = sorted(f for f in os.listdir(path) if f.endswith(".index"))
        if len(indexes) == 1:
            return os.path.join(path, indexes[0][: -len(".index")])
        raise ConversionError(f"Directory {path!r} holds {len(indexes)} checkpoints "
                              f"({indexes}); pass the prefix of one, e.g. {path}/model.ckpt.")
    path = re.sub(r"\.(index|data-\d+-of-\d+)$", "", path)
    if not os.path.exists(path + ".index"):
        raise ConversionError(
            f"No TF checkpoint at {path!r}: expected {path}.index and {path}.data-00000-of-00001 "
            "(pass the prefix, e.g. deeplabv3_pascal_train_aug/model.ckpt).")
    return path


def from_tf_checkpoint(model, checkpoint, *, member=None):
    """Copies a TF research/deeplab checkpoint into `model`.

    `checkpoint` may be the model zoo's tarball as downloaded (its checkpoint is extracted
    safely; give `member`, e.g. "deeplabv3_pascal_train_aug/model.ckpt", when it holds
    several), a checkpoint prefix or folder, or a `{name: array}` mapping.

    Every checkpoint tensor is mapped exactly once or listed in
    `report.skipped` (global step, optimizer slots); every model weight is
    filled; anything else raises `ConversionError` naming the tensor.

    Target models (match the checkpoint's architecture and `num_classes`):
    - Xception-65 tarballs (VOC, Cityscapes, ADE20K): `DeepLabV3Plus(
      backbone="xception65", separable=True)`.
    - `deeplabv3_mnv2_pascal_train_aug`: `DeepLabV3(backbone="mobilenetv2",
      aspp_rates=())` (image pooling + 1x1 branch only, no decoder).
    For TF's outputs also use `pooling_first=True`, `align_corners=True`,
    `bn_epsilon=1e-5` (head), inputs scaled to -1..1 (mean = std = 127.5).

    Args:
        model: a `DeepLabV3Plus` or `DeepLabV3` with an Xception-65 or
            MobileNetV2 backbone and the deeplab head.
        checkpoint: a `.tar.gz` from the model zoo, a checkpoint prefix or
            directory (needs TensorFlow, see `read_tf_checkpoint`) or a mapping
            `{tf_name: array}`.
        member: the checkpoint prefix inside a tarball.

    Returns:
        A `ConversionReport`.

    Example:

    ```python
    model = deeplab_keras.models.DeepLabV3Plus(backbone="xception65", num_classes=21,
                                               separable=True, pooling_first=True)
    report = from_tf_checkpoint(model, "deeplabv3_pascal_train_aug_2018_01_04.tar.gz")
    print(report.summary())
    ```
    """
    if not isinstance(checkpoint, collections.abc.Mapping):
        if source_files.is_archive(os.fspath(checkpoint)):
            with source_files.checkpoint_prefix(checkpoint, member) as prefix:
                return from_tf_checkpoint(model, read_tf_checkpoint(prefix))
        checkpoint = read_tf_checkpoint(checkpoint)
    targets = _Targets(model)
    report = ConversionReport()
    for name in checkpoint:
        reason = _skip_reason(name)
        if reason:
            report.skipped[name] = reason
            continue
        variable, convert = targets.lookup(name)
        value = checkpoint[name]
        assign(variable, convert(value) if convert else value, name, report)
    check_complete(model, report, "from_tf_checkpoint")
    return report


def _skip_reason(name):
    if name == "global_step":
        return "training step counter"
    if _OPTIMIZER_SLOT.search(name) or name in ("beta1_power", "beta2_power"):
        return "optimizer state"
    return None


class _Targets:
    """Finds the model variable for a TF-slim name."""

    def __init__(self, model):
        backbone = getattr(model, "backbone", None)
        scope = BACKBONE_SCOPES.get(type(backbone).__name__)
        if scope is None:
            raise ConversionError(
                "from_tf_checkpoint needs a DeepLabV3Plus/DeepLabV3 with an Xception-65 or "
                f"MobileNetV2 backbone; received {type(model).__name__} with backbone "
                f"{type(backbone).__name__}.")
        if model.get_config().get("head", "deeplab") != "deeplab":
            raise ConversionError("from_tf_checkpoint needs the deeplab head (head='deeplab'); "
                                  "TF's models have no torchvision-style 3x3 head conv.")
        self.model, self.backbone, self.scope = model, backbone, scope
        self.backbone_layers = {layer.name: layer for layer in backbone.layers}
        self.aspp = model.get_layer("aspp")
        names = {layer.name for layer in model.layers}
        self.decoder = model.get_layer("decoder") if "decoder" in names else None
        self.classifier = model.get_layer("classifier")

    def lookup(self, name):
        """(variable, converter or None) for checkpoint tensor `name`."""
        scope, _, field = name.rpartition("/")
        bn = scope.endswith("/BatchNorm")
        if bn:
            scope = scope[: -len("/BatchNorm")]
        if field not in _FIELDS:
            raise self._unknown(name)
        if scope.startswith(self.scope + "/"):
            layer_name = scope[len(self.scope) + 1:].replace("/", "_")
            layer_name += "_BatchNorm" if bn else ""
            layer = self.backbone_layers.get(layer_name)
            if layer is None:
                raise self._unknown(name, f"the backbone has no layer {layer_name!r}")
            return self._field(layer, field, name), None
        if scope == "logits/semantic" and not bn:
            return self._field(self.classifier, field, name), None
        block, part = self._head_block(scope, name)
        if block is None:
            raise self._unknown(name)
        split = scope.endswith(("_depthwise", "_pointwise"))
        if split and block.depthwise is None:
            raise ConversionError(
                f"{name!r} is part of a depthwise-separable conv but {block.name} is a plain "
                "conv; build the model with separable=True (TF's Xception-65 models use "
                "separable ASPP and decoder convs).")
        if not split and block.depthwise is not None:
            raise ConversionError(
                f"{name!r} is a plain conv but {block.name} is depthwise-separable; build the "
                "model with separable=False.")
        layer = (block.depthwise_bn if part == "depthwise" else block.bn) if bn else (
            block.depthwise if part == "depthwise" else block.conv)
        convert = None
        if block is self.aspp.projection and field == "weights" and not bn:
            convert = self._projection_kernel
        return self._field(layer, field, name), convert

    def _head_block(self, scope, name):
        aspp = self.aspp
        if scope == "aspp0":
            return aspp.conv_1x1, "conv"
        if scope == "image_pooling":
            if aspp.pooling_conv is None:
                raise self._unknown(name, "the model's ASPP has image_pooling=False")
            return aspp.pooling_conv, "conv"
        if scope == "concat_projection":
            return aspp.projection, "conv"
        m = _ASPP_BRANCH.match(scope)
        if m and int(m.group(1)) >= 1:
            index = int(m.group(1)) - 1
            if index >= len(aspp.atrous_branches):
                raise self._unknown(name, f"the model's ASPP has {len(aspp.atrous_branches)} "
                                    f"atrous branches (rates {aspp.rates})")
            part = "depthwise" if m.group(2) == "_depthwise" else "conv"
            return aspp.atrous_branches[index], part
        if scope.startswith("decoder/"):
            if self.decoder is None:
                raise self._unknown(name, "the model has no decoder (use DeepLabV3Plus)")
            if scope == "decoder/feature_projection0":
                return self.decoder.low_level_projection, "conv"
            m = _DECODER_SEPARABLE.match(scope)
            if m:
                block = (self.decoder.conv1, self.decoder.conv2)[int(m.group(1))]
                return block, "depthwise" if m.group(2) == "depthwise" else "conv"
            m = _DECODER_PLAIN.match(scope)
            if m:
                return (self.decoder.conv1, self.decoder.conv2)[int(m.group(1)) - 1], "conv"
        return None, None

    def _projection_kernel(self, value):
        """TF concatenates [pooling, aspp0, aspp1, ...]; reorder for pooling_first=False."""
        aspp = self.aspp
        if aspp.pooling_conv is None or aspp.pooling_first:
            return value
        value = np.asarray(value)
        width = aspp.filters
        return np.concatenate([value[:, :, width:], value[:, :, :width]], axis=2)

    def _field(self, layer, field, name):
        weights = {w.name: w for w in layer.weights}
        variable = weights.get(_FIELDS[field])
        if variable is None:
            raise self._unknown(name, f"layer {layer.name!r} has no {_FIELDS[field]!r} "
                                f"(it has {sorted(weights)})")
        return variable

    def _unknown(self, name, why=None):
        return ConversionError(
            f"TF checkpoint tensor {name!r} has no counterpart in {self.model.name}"
            + (f": {why}" if why else "")
            + ". Build the model with the checkpoint's architecture (backbone variant, "
            "middle_units, separable, aspp_rates, decoder).")
