"""`load_model(name_or_path)`: registry models with verified weights, or `.keras` files.

A registry name builds the record's architecture, fetches the original
public file (verified by `weights.download.fetch`), converts it once with the
record's converter and caches the result as
`<cache_dir>/converted/<name>.weights.h5` (written atomically, with a
`.sha256` sidecar that is checked on every load). Every model takes RGB
float32 images in 0..255 of any size, normalises them inside and returns
logits at input resolution.

Example:

```python
import deeplab_keras as dk
model = dk.load_model("deeplabv3_resnet101_coco")
labels = model.predict(images).argmax(-1)          # images: [B, H, W, 3] RGB 0..255
finetune = dk.load_model("deeplab_resnet101_voc", num_classes=11)  # new classifier
scratch = dk.weights.loading.build_model("deeplabv3", 11, backbone="resnet101",
                                         backbone_weights="imagenet")
```
"""

import contextlib
import logging
import os
import tempfile
import uuid

import numpy as np

from deeplab_keras.weights import download
from deeplab_keras.weights import registry

logger = logging.getLogger("deeplab_keras.weights")

H5_FORMAT = "deeplab_keras.converted_weights/1"
CONVERTED_SUBDIR = "converted"
FAMILIES = {"deeplabv1": "DeepLabV1", "deeplabv2": "DeepLabV2", "deeplabv3": "DeepLabV3",
            "deeplabv3plus": "DeepLabV3Plus"}


class WeightsIntegrityError(ValueError):
    """A converted weights file does not match its recorded sha256."""


# ---------------------------------------------------------------------------------------------
# Public API


def load_model(name_or_path, *, num_classes=None, weights=True, backbone_weights=None,
               progress=True, **overrides):
    """A registry model with its weights, or a saved `.keras` model.

    Args:
        name_or_path: a name from `list_models()` or a path to a `.keras` file
            (loaded with `safe_mode=True`; the package's layers are registered
            on import).
        num_classes: classes of the returned model. If it differs from the
            record's, every weight whose shape does not depend on the class
            count is kept and the classifier weights are re-initialised (a
            log line lists them).
        weights: load the record's pretrained weights (True) or return the
            architecture with random weights (False).
        backbone_weights: "imagenet" loads keras.applications ImageNet weights
            into the backbone (and sets the input normalisation they expect);
            only with `weights=False` (full weights already include a trained
            backbone). Combine with `backbone="resnet101"` etc. to swap the
            backbone.
        progress: progress bar while downloading.
        **overrides: architecture arguments that do not change weight shapes
            (`output_stride`, `upsample_logits`, `msc_scales`, ...).

    Returns:
        A Keras model; `model.weight_record` is the `WeightRecord` (registry
        names only).

    Example:

    ```python
    model = deeplab_keras.load_model("deeplab_resnet101_voc")
    model.weight_record.crf  # (4.0, 67.0, 3.0, 3.0, 1.0)
    ```
    """
    if _looks_like_path(name_or_path):
        return _load_keras_file(os.fspath(name_or_path), num_classes, overrides)
    record = registry.get_record(name_or_path)
    if backbone_weights is not None and weights:
        raise ValueError(f"load_model({record.name!r}): `backbone_weights` only applies with "
                         "weights=False; the full pretrained weights already include a trained "
                         "backbone.")
    target_classes = record.num_classes if num_classes is None else int(num_classes)
    if target_classes < 1:
        raise ValueError(f"num_classes must be >= 1; received {num_classes}.")
    if backbone_weights is not None:
        if backbone_weights != "imagenet":
            raise ValueError(f"backbone_weights must be None or 'imagenet'; received "
                             f"{backbone_weights!r}.")
        # The input normalisation (and for v2 the conv biases) follow the ImageNet weights.
        overrides.setdefault("backbone", record.arch_kwargs.get("backbone"))
        overrides = _imagenet_kwargs(record.architecture, overrides)
    bundled = bundled_weights_path(record) if weights and record.bundled else None
    model = build_from_record(record, target_classes, **overrides)
    if weights:
        # Convert straight into this model when it has the record's shapes (saves a build).
        same = target_classes == record.num_classes and not overrides
        path = bundled or ensure_converted(record, progress=progress,
                                           model=model if same else None)
        reinitialised = load_converted_weights(model, path, record)
        if reinitialised:
            logger.warning("%s: num_classes=%d differs from the record's %d; kept every other "
                        "weight and re-initialised %s.", record.name, target_classes,
                        record.num_classes, reinitialised)
    elif backbone_weights is not None:
        load_backbone_weights(model, backbone_weights, progress=progress)
    _attach(model, record)
    return model


def build_from_record(record, num_classes=None, **overrides):
    """The record's architecture with random weights (MSC-wrapped if the record says so)."""
    from deeplab_keras import models

    overrides = dict(overrides)
    msc_scales = overrides.pop("msc_scales", record.msc_scales)
    if "num_classes" in overrides:
        raise TypeError("pass num_classes as its own argument")
    kwargs = {**record.arch_kwargs, **overrides}
    cls = getattr(models, record.architecture)
    model = cls(num_classes=record.num_classes if num_classes is None else int(num_classes),
                **kwargs)
    if msc_scales:
        model = models.MSC(model, scales=msc_scales)
    return model


def build_model(architecture, num_classes, *, backbone=None, backbone_weights=None,
                progress=True, **kwargs):
    """Builds any DeepLab architecture, optionally with ImageNet backbone weights.

    Args:
        architecture: a family ("deeplabv1", "deeplabv2", "deeplabv3",
            "deeplabv3plus"), a class name ("DeepLabV3") or a
            `models.list_architectures()` name ("deeplabv3_resnet101").
        num_classes: output classes, background included.
        backbone: backbone name (overrides the architecture's default).
        backbone_weights: None or "imagenet" (keras.applications no-top
            weights for backbones "resnet50", "resnet101", "vgg16_largefov"
            [DeepLab v1/v2 "vgg16"] and "mobilenetv2"). The model's input
            normalisation is set to what those weights expect unless `mean`,
            `std` or `channel_order` are given.
        **kwargs: any constructor argument of the model class.

    Example:

    ```python
    model = build_model("deeplabv3", 11, backbone="resnet101", backbone_weights="imagenet")
    ```
    """
    from deeplab_keras import models

    if backbone_weights not in (None, "imagenet"):
        raise ValueError(f"backbone_weights must be None or 'imagenet'; received "
                         f"{backbone_weights!r}.")
    factory_names = models.factory.ARCHITECTURES
    if backbone is None and backbone_weights is None and architecture in factory_names:
        return models.build(architecture, num_classes, **kwargs)
    class_name = _class_name(architecture)
    if backbone is None:
        backbone = _default_backbone(architecture, class_name)
    if backbone is not None:
        kwargs["backbone"] = backbone
    if backbone_weights == "imagenet":
        kwargs = _imagenet_kwargs(class_name, kwargs)
    if class_name == "DeepLabV1":
        kwargs.pop("backbone", None)
    model = getattr(models, class_name)(num_classes=int(num_classes), **kwargs)
    if backbone_weights == "imagenet":
        load_backbone_weights(model, "imagenet", progress=progress)
    return model


def load_backbone_weights(model, weights="imagenet", *, progress=True):
    """Loads keras.applications ImageNet no-top weights into `model`'s backbone.

    Supported backbones: "resnet50"/"resnet101" (stride in the 1x1 conv,
    conv biases: keras.applications' layout), VGG-16 LargeFOV and
    MobileNetV2 (alpha 1.0). The model's input normalisation must be what
    the weights expect (see `records.BACKBONE_WEIGHTS`); `build_model(...,
    backbone_weights="imagenet")` sets it.

    Returns:
        The `ConversionReport` (the classification top and MobileNetV2's
        final 1x1/1280 conv are listed as skipped).

    Example:

    ```python
    model = deeplab_keras.models.DeepLabV3(backbone="resnet101", num_classes=21,
                                           mean=(103.939, 116.779, 123.68), std=(1, 1, 1),
                                           channel_order="bgr")
    load_backbone_weights(model, "imagenet")
    ```
    """
    import keras

    from deeplab_keras.convert import common
    from deeplab_keras.weights import records

    if weights != "imagenet":
        raise ValueError(f"load_backbone_weights: only 'imagenet' is available; received "
                         f"{weights!r}.")
    net = _unwrap(model)
    backbone = common.backbone_of(net)
    key = imagenet_backbone_key(backbone)
    spec = records.BACKBONE_WEIGHTS[key]
    _check_normalisation(net, spec.preprocessing, f"ImageNet weights of {key!r}")
    path = _fetch(spec.url, md5=spec.md5, name=f"{key}.imagenet", filename=spec.filename,
                  subdir="keras_applications", progress=progress)
    app = getattr(keras.applications, spec.application)(
        weights=None, include_top=False, input_shape=(None, None, 3), **spec.application_kwargs)
    try:
        app.load_weights(path)
    except Exception as e:
        raise ValueError(f"{path}: not a keras.applications {spec.application} no-top weight "
                         f"file ({e}). Delete it and retry.") from e
    if key == "mobilenetv2":
        report = _mobilenetv2_from_keras_applications(backbone, app)
    else:
        from deeplab_keras.convert import from_keras_applications

        report = from_keras_applications(backbone, app)
    logger.info("ImageNet weights of %s loaded into %s: %s.", key, backbone.name,
                report.summary())
    return report


def imagenet_backbone_key(backbone):
    """The `records.BACKBONE_WEIGHTS` key matching `backbone`, or ValueError saying why not."""
    from deeplab_keras import backbones

    if isinstance(backbone, backbones.ResNetBackbone):
        depth = {(3, 4, 6, 3): "resnet50", (3, 4, 23, 3): "resnet101"}.get(backbone.depths)
        if (depth and backbone.stride_in == "1x1" and backbone.use_bias
                and backbone.widths == (64, 128, 256, 512) and backbone.stem_filters == 64):
            return depth
        raise ValueError(
            "keras.applications ImageNet weights fit ResNet-50/101 with the stride in the 1x1 "
            "conv and conv biases (backbone='resnet50' or 'resnet101'); this backbone has "
            f"depths={backbone.depths}, widths={backbone.widths}, stride_in="
            f"{backbone.stride_in!r}, use_bias={backbone.use_bias}. For DeepLab v2 use "
            "build_model('deeplabv2', n, backbone='resnet101', backbone_weights='imagenet'), "
            "which adds the biases.")
    if isinstance(backbone, backbones.VGG16LargeFOVBackbone):
        if backbone.widths == (64, 128, 256, 512, 512):
            return "vgg16_largefov"
        raise ValueError(f"ImageNet VGG-16 weights need the full widths; got {backbone.widths}.")
    if isinstance(backbone, backbones.MobileNetV2Backbone):
        if backbone.alpha == 1.0:
            return "mobilenetv2"
        raise ValueError(f"ImageNet MobileNetV2 weights are registered for alpha=1.0 only; "
                         f"got alpha={backbone.alpha}.")
    raise ValueError(f"No ImageNet weights are registered for {type(backbone).__name__}; "
                     "available: resnet50, resnet101, vgg16_largefov, mobilenetv2 "
                     "(Xception-65's ImageNet checkpoint is a TF1 tarball: not registered).")


# ---------------------------------------------------------------------------------------------
# Converted-weights cache


def bundled_weights_path(record):
    """Path of a record's weights shipped in the package, verified against its sha256."""
    path = registry.package_path(record.bundled)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{record.name}: the bundled weights {path} are missing from this installation. "
            "Reinstall deeplab-keras (`pip install --force-reinstall deeplab-keras`, or "
            "`git lfs pull`/`git checkout` in a source checkout).")
    actual = _sha256(path)
    if actual != record.sha256:
        raise WeightsIntegrityError(
            f"{record.name}: the bundled weights {path} are corrupt or were replaced: sha256 "
            f"{actual} != {record.sha256} recorded in deeplab_keras/weights/records.py. "
            "Reinstall the package.")
    return path


def converted_path(record):
    return os.path.join(download.cache_dir(), CONVERTED_SUBDIR, f"{record.name}.weights.h5")


def ensure_converted(record, *, progress=True, model=None):
    """Path of the verified converted weights of `record`, converting once if needed.

    A cached file whose sha256 does not match its sidecar is moved aside
    (`.corrupt-<id>`) with a warning and converted again from the (verified)
    source file. `model`, if given, must be built from the record unchanged;
    the conversion then fills it directly.
    """
    path = converted_path(record)
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with _lock(path + ".lock"):
        if os.path.exists(path):
            try:
                verify_converted(path)
                return path
            except WeightsIntegrityError as e:
                aside = f"{path}.corrupt-{uuid.uuid4().hex[:8]}"
                os.replace(path, aside)
                logger.warning("%s Moved it to %s and converting again from the source.",
                               e, aside)
        source = fetch_source(record, progress=progress)
        if model is None:
            model = build_from_record(record)
        report = convert(record, model, source)
        logger.info("%s: converted %s (%s).", record.name, source, report.summary())
        write_converted_weights(model, path, record)
    return path


def verify_converted(path):
    """Raises `WeightsIntegrityError` unless `path` matches its `.sha256` sidecar."""
    sidecar = path + ".sha256"
    try:
        with open(sidecar, encoding="ascii") as f:
            expected = f.read().split()[0].strip().lower()
    except (OSError, IndexError) as e:
        raise WeightsIntegrityError(f"Converted weights {path} have no readable sha256 "
                                    f"sidecar {sidecar}.") from e
    actual = _sha256(path)
    if actual != expected:
        raise WeightsIntegrityError(f"Converted weights {path} are corrupt: sha256 {actual} "
                                    f"!= recorded {expected} ({sidecar}).")
    return actual


def write_converted_weights(model, path, record, storage="float32"):
    """Writes `model`'s weights by variable path to `path` (atomic) plus a sha256 sidecar.

    `storage="float16"` halves the file: every float weight is stored as
    float16 except batch-norm moving statistics (kept float32: variances
    can underflow float16) and any weight float16 cannot hold (|x| > 65504).
    Loading casts back to the variable's dtype.
    """
    if storage not in ("float32", "float16"):
        raise ValueError(f"storage must be 'float32' or 'float16'; received {storage!r}.")
    import h5py

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = H5_FORMAT
            f.attrs["record"] = record.name
            f.attrs["num_classes"] = int(record.num_classes)
            group = f.create_group("weights")
            for i, variable in enumerate(model.weights):
                value = _stored_value(np.asarray(variable.numpy()), variable.path, storage)
                data = group.create_dataset(f"{i:05d}", data=value)
                data.attrs["path"] = variable.path
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        digest = _sha256(tmp)
        download.write_bytes_atomic(path + ".sha256",
                                    f"{digest}  {os.path.basename(path)}\n".encode("ascii"))
        os.replace(tmp, path)
        _fsync_dir(folder)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return digest


def _stored_value(value, path, storage):
    if (storage == "float16" and value.dtype.kind == "f"
            and not path.endswith(("moving_mean", "moving_variance"))
            and np.all(np.abs(value) <= np.finfo(np.float16).max)):
        return value.astype(np.float16)
    return value


def read_converted_weights(path):
    """`{variable_path: array}` from a file written by `write_converted_weights`."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != H5_FORMAT:
            raise ValueError(f"{path} is not a deeplab_keras converted-weights file "
                             f"(format {f.attrs.get('format')!r}, expected {H5_FORMAT!r}).")
        return {str(d.attrs["path"]): d[()] for d in f["weights"].values()}


def load_converted_weights(model, path, record):
    """Assigns the weights in `path` to `model` by variable path.

    Weights whose shape differs only in the class dimension (last axis equal
    to the record's `num_classes` in the file and to the model's class count
    in the model) are left at their fresh initialisation. Returns the list
    of those variable paths. Anything else that does not match raises.
    """
    stored = read_converted_weights(path)
    model_classes = _num_classes(model)
    reinitialised, missing, wrong = [], [], []
    for variable in model.weights:
        value = stored.pop(variable.path, None)
        if value is None:
            missing.append(variable.path)
            continue
        shape = tuple(variable.shape)
        if value.shape == shape:
            variable.assign(value.astype(variable.dtype))
        elif (value.shape[:-1] == shape[:-1] and value.shape[-1] == record.num_classes
              and shape[-1] == model_classes):
            reinitialised.append(variable.path)
        else:
            wrong.append(f"{variable.path}: file {value.shape} vs model {shape}")
    if missing or wrong or stored:
        raise ValueError(
            f"{path} does not fit this model ({record.name}): missing {missing[:5]}, shape "
            f"mismatches {wrong[:5]}, unused {sorted(stored)[:5]}. Only num_classes and "
            "shape-free arguments (output_stride, upsample_logits, ...) may be overridden.")
    return reinitialised


# ---------------------------------------------------------------------------------------------
# Sources and converters


def fetch_source(record, *, progress=True):
    """Local path of the record's verified source file (tried URL by URL)."""
    filename = record.urls[0].rsplit("/", 1)[1]
    path = _fetch(record.urls[0], sha256=record.sha256, md5=record.md5, size=record.size,
                  name=record.name, filename=filename, subdir="downloads", progress=progress,
                  mirrors=list(record.urls[1:]) or None)
    if record.sha256_prefix:
        actual = _sha256(path)
        if not actual.startswith(record.sha256_prefix):
            raise ValueError(f"{path}: sha256 {actual} does not start with the prefix "
                             f"{record.sha256_prefix} published in {record.urls[0]}. Delete "
                             "the file and download it again.")
    return path


def convert(record, model, source):
    """Runs the record's converter on the local `source` file; returns its report."""
    if record.converter == "torchvision":
        from deeplab_keras.convert import torch_pth

        return torch_pth.from_torchvision_file(model, source)
    if record.converter == "caffe":
        from deeplab_keras.convert import caffe
        from deeplab_keras.weights import archive

        members = archive.list_members(source)
        if record.member not in members:
            found = [m for m in members if m.endswith(".caffemodel")]
            raise ValueError(f"{source} ({record.name}) has no member {record.member!r}; its "
                             f".caffemodel members are {found}.")
        with tempfile.TemporaryDirectory(dir=os.path.dirname(source)) as tmp:
            local = os.path.join(tmp, os.path.basename(record.member))
            with open(local, "wb") as f:
                f.write(archive.extract_member(source, record.member))
            return caffe.from_caffemodel(model, local)
    if record.converter == "tf_slim":
        from deeplab_keras.convert import tf_slim
        from deeplab_keras.weights import archive

        members = archive.list_members(source)
        prefix = _checkpoint_prefix(record, source, members)
        wanted = [m for m in members if m.startswith(prefix + ".")]
        with tempfile.TemporaryDirectory(dir=os.path.dirname(source)) as tmp:
            out = os.path.join(tmp, "extracted")
            archive.safe_extract(source, out, members=wanted)
            return tf_slim.from_tf_checkpoint(model, os.path.join(out, prefix))
    if record.converter == "deeplab_keras_h5":
        from deeplab_keras.convert.common import ConversionReport

        reinitialised = load_converted_weights(model, source, record)
        if reinitialised:
            raise ValueError(f"{source}: class dimension differs from the record's.")
        return ConversionReport(mapped={v.path: v.path for v in model.weights})
    raise ValueError(f"{record.name}: unknown converter {record.converter!r}.")


def _checkpoint_prefix(record, source, members):
    if record.member and record.member + ".index" in members:
        return record.member
    indexes = [m for m in members if m.endswith(".index")]
    if len(indexes) == 1:
        logger.info("%s: checkpoint %s not in %s; using its only checkpoint %s.", record.name,
                    record.member, source, indexes[0])
        return indexes[0][: -len(".index")]
    raise ValueError(f"{source} ({record.name}): expected checkpoint {record.member}.index; the "
                     f"archive has {indexes}.")


# ---------------------------------------------------------------------------------------------
# Helpers


def _fetch(url, **kwargs):
    if kwargs.get("mirrors") is None:
        kwargs.pop("mirrors", None)
    return download.fetch(url, **kwargs)


def _looks_like_path(value):
    if isinstance(value, os.PathLike):
        return True
    if not isinstance(value, str):
        raise TypeError(f"load_model expects a registry name or a path; received {value!r}.")
    return value.endswith((".keras", ".h5")) or os.sep in value or os.path.exists(value)


def _load_keras_file(path, num_classes, overrides):
    import keras

    import deeplab_keras  # noqa: F401  (registers the custom objects)

    if num_classes is not None or overrides:
        raise ValueError(f"load_model({path!r}): num_classes and architecture overrides only "
                         "apply to registry names; load the file, then fine-tune it.")
    if not path.endswith(".keras"):
        raise ValueError(f"load_model({path!r}): only `.keras` files load here (safe_mode). "
                         "For weight files build the model and call model.load_weights(path).")
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file {path!r}.")
    return keras.saving.load_model(path, safe_mode=True)


def _attach(model, record):
    # A plain attribute: not tracked as state, not serialized.
    object.__setattr__(model, "weight_record", record)


def _unwrap(model):
    from deeplab_keras.models.msc import MSC

    return model.model if isinstance(model, MSC) else model


def _num_classes(model):
    outputs = model.outputs
    return int(outputs[0].shape[-1]) if outputs else getattr(model, "num_classes", None)


def normalisation_layer(model):
    """The `ImageNormalization` layer of a DeepLab model (unwrapping MSC/CRFRefined)."""
    from deeplab_keras.layers.preprocessing import ImageNormalization

    net = _unwrap(model)
    while not any(isinstance(layer, ImageNormalization) for layer in net.layers) and hasattr(
            net, "model"):
        net = _unwrap(net.model)
    for layer in net.layers:
        if isinstance(layer, ImageNormalization):
            return layer
    raise ValueError(f"{model.name} has no ImageNormalization layer.")


def _check_normalisation(model, pre, what):
    layer = normalisation_layer(model)
    ok = (np.allclose(layer.mean, pre.mean) and np.allclose(layer.std, pre.std)
          and layer.channel_order == pre.channel_order)
    if not ok:
        raise ValueError(
            f"{what} expect inputs normalised with mean={pre.mean}, std={pre.std}, "
            f"channel_order={pre.channel_order!r}, but {model.name} normalises with "
            f"mean={layer.mean}, std={layer.std}, channel_order={layer.channel_order!r}. Build "
            "the model with those values (build_model(..., backbone_weights='imagenet') does).")


def _class_name(architecture):
    from deeplab_keras import models

    family = str(architecture).split("_")[0].lower()
    if architecture in FAMILIES.values():
        return architecture
    if family in FAMILIES:
        return FAMILIES[family]
    raise ValueError(f"Unknown architecture {architecture!r}; use one of {sorted(FAMILIES)}, "
                     f"{sorted(FAMILIES.values())} or {models.list_architectures()}.")


def _default_backbone(architecture, class_name):
    """The backbone implied by a factory name such as "deeplabv3_resnet101" (keras layout)."""
    parts = str(architecture).split("_", 1)
    if len(parts) == 2 and class_name != "DeepLabV1":
        return parts[1]
    return None


def _imagenet_kwargs(class_name, kwargs):
    from deeplab_keras.weights import records

    defaults = {"DeepLabV3": "resnet101_v1_5", "DeepLabV3Plus": "xception65",
                "DeepLabV2": "resnet101", "DeepLabV1": "vgg16"}
    backbone = kwargs.get("backbone") or defaults[class_name]
    key = "vgg16_largefov" if backbone in ("vgg16", "vgg16_largefov") else backbone
    if key not in records.BACKBONE_WEIGHTS:
        raise ValueError(f"No ImageNet (keras.applications) weights for backbone {backbone!r}; "
                         f"available: {sorted(records.BACKBONE_WEIGHTS)} (DeepLab v1/v2 call "
                         "VGG-16 'vgg16').")
    if class_name in ("DeepLabV2",) and key.startswith("resnet"):
        # keras.applications ResNets have conv biases and BN epsilon 1.001e-5.
        kwargs["backbone_kwargs"] = {"use_bias": True, "bn_epsilon": 1.001e-5,
                                     **(kwargs.get("backbone_kwargs") or {})}
    pre = records.BACKBONE_WEIGHTS[key].preprocessing
    for field in ("mean", "std", "channel_order"):
        kwargs.setdefault(field, getattr(pre, field))
    return kwargs


# keras.applications MobileNetV2 layer name -> ours (TF-slim scopes).
def _mobilenetv2_name(name):
    if name == "Conv1":
        return "Conv"
    if name == "bn_Conv1":
        return "Conv_BatchNorm"
    if name.startswith("expanded_conv_"):
        block, rest = "expanded_conv", name[len("expanded_conv_"):]
    elif name.startswith("block_"):
        index, rest = name[len("block_"):].split("_", 1)
        block = f"expanded_conv_{int(index)}"
    else:
        return None
    if rest.endswith("_BN"):
        rest = rest[: -len("_BN")] + "_BatchNorm"
    return f"{block}_{rest}"


def _mobilenetv2_from_keras_applications(backbone, app):
    from deeplab_keras.convert import common

    report = common.ConversionReport()
    targets = {layer.name: layer for layer in backbone.layers}
    for layer in app.layers:
        if not layer.weights:
            continue
        if layer.name in ("Conv_1", "Conv_1_bn"):
            for w in layer.weights:
                report.skipped[w.path] = "final 1x1/1280 conv: not part of DeepLab's MobileNetV2"
            continue
        dest = targets.get(_mobilenetv2_name(layer.name) or "")
        if dest is None or len(dest.weights) != len(layer.weights):
            raise common.ConversionError(
                f"keras.applications MobileNetV2 layer {layer.name!r} has no counterpart in "
                f"{backbone.name}.")
        for src, dst in zip(_ordered(layer), _ordered(dest)):
            common.assign(dst, src.numpy(), src.path, report)
    common.check_complete(backbone, report, "MobileNetV2 ImageNet weights")
    return report


def _ordered(layer):
    order = ("kernel", "depthwise_kernel", "bias", "gamma", "beta", "moving_mean",
             "moving_variance")
    weights = {w.name: w for w in layer.weights}
    return [weights[n] for n in order if n in weights]


def _sha256(path):
    from deeplab_keras.weights.download import sha256_file

    return sha256_file(path)


def _fsync_dir(folder):
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _lock(path):
    """Exclusive per-entry lock so concurrent processes convert once (POSIX; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
