"""`load_model(name_or_path)`: registry models with verified weights, or `.keras` files.

A registry name builds the record's architecture (`models.factory`), fetches the original
public file (verified by `download.fetch`), converts it once with the record's converter and
caches the result (`cache`), checked against its sha256 on every load. Every model takes RGB
float32 images in 0..255 of any size, normalises them inside and returns logits at input
resolution.

Example:

```python
import deeplab_keras as dk
model = dk.load_model("deeplabv3_resnet101_coco")
labels = model.predict(images).argmax(-1)          # images: [B, H, W, 3] RGB 0..255
finetune = dk.load_model("deeplab_resnet101_voc", num_classes=11)  # new classifier
scratch = dk.weights.build_model("deeplabv3", 11, backbone="resnet101",
                                 backbone_weights="imagenet")
```
"""

import logging
import os

from deeplab_keras.models import factory
from deeplab_keras.models.precision import with_dtype_policy
from deeplab_keras.weights import cache
from deeplab_keras.weights import imagenet_backbones
from deeplab_keras.weights import registry

logger = logging.getLogger("deeplab_keras.weights")


def load_model(name_or_path, *, num_classes=None, weights=True, backbone_weights=None,
               progress=True, dtype=None, **overrides):
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
        dtype: run the model under this Keras dtype policy: "mixed_bfloat16"
            (bfloat16 arithmetic: faster on CPUs with AMX or AVX-512 BF16 and on
            GPUs), "mixed_float16" or "float32" (the default). The weights load
            in float32 and stay float32; see `models.with_dtype_policy`.
        **overrides: architecture arguments that do not change weight shapes
            (`output_stride`, `upsample_logits`, `msc_scales`, ...).

    Returns:
        A Keras model; `model.weight_record` is the `WeightRecord` (registry
        names only); `model.class_names` and `model.palette` come from the
        record (with a different `num_classes`: `class_0..class_{N-1}` unless
        `class_names=[...]` is given), and `model.save` keeps them.

    The bundled `deeplabv3plus_mobilenetv2_camvid` halves its input inside
    (`models.MSC(scales=(0.5,))`, it was trained at half resolution): feed it
    full-size images. To fine-tune it, load it with `msc_scales=None` (the bare
    network, for half-size crops, e.g. scale range 0.375-0.75 of CamVid frames),
    or keep the MSC wrapper and train on full-size crops with a scale range
    around 1; the wrapper plus half-size crops would downsample twice.

    Example:

    ```python
    model = deeplab_keras.load_model("deeplab_resnet101_voc")
    model.weight_record.crf  # CRFParams(4.0, 67.0, 3.0, 3.0, 1.0)
    ```
    """
    if _looks_like_path(name_or_path):
        if num_classes is not None or overrides:
            raise ValueError(f"load_model({name_or_path!r}): num_classes and architecture "
                             "overrides only apply to registry names; load the file, then "
                             "fine-tune it.")
        return with_dtype_policy(load_keras_file(os.fspath(name_or_path)), dtype)
    record = registry.get_record(name_or_path)
    if backbone_weights is not None and weights:
        raise ValueError(f"load_model({record.name!r}): `backbone_weights` only applies with "
                         "weights=False; the full pretrained weights already include a trained "
                         "backbone.")
    target_classes = record.num_classes if num_classes is None else int(num_classes)
    if target_classes < 1:
        raise ValueError(f"num_classes must be >= 1; received {num_classes}.")
    if imagenet_backbones.check_choice(backbone_weights) is not None:
        # The input normalisation (and for v2 the conv biases) follow the ImageNet weights,
        # over the record's own.
        overrides.setdefault("backbone", record.arch_kwargs.get("backbone"))
        overrides = imagenet_backbones.imagenet_kwargs(record.architecture, overrides)
        overrides["backbone_weights"] = backbone_weights
    if target_classes != record.num_classes and "class_names" not in overrides:
        logger.warning("%s: num_classes=%d differs from the record's %d; the classes are named "
                       "class_0..class_%d (pass class_names=[...] to name them).", record.name,
                       target_classes, record.num_classes, target_classes - 1)
    bundled = cache.bundled_weights_path(record) if weights and record.bundled else None
    model = build_from_record(record, target_classes, **overrides)
    if weights:
        # Convert straight into this model when it has the record's shapes (saves a build).
        same = target_classes == record.num_classes and not overrides
        path = bundled or cache.ensure_converted(record, build_from_record, progress=progress,
                                                 model=model if same else None)
        reinitialised = cache.load_converted_weights(model, path, record)
        if reinitialised:
            logger.warning("%s: num_classes=%d differs from the record's %d; kept every other "
                           "weight and re-initialised %s.", record.name, target_classes,
                           record.num_classes, reinitialised)
    # A plain attribute: not tracked as state, not serialized.
    object.__setattr__(model, "weight_record", record)
    return with_dtype_policy(model, dtype)


def build_from_record(record, num_classes=None, **overrides):
    """The record's architecture with random weights (MSC-wrapped if the record says so)."""
    from deeplab_keras.models.msc import MSC

    overrides = dict(overrides)
    msc_scales = overrides.pop("msc_scales", record.msc_scales)
    if "num_classes" in overrides:
        raise TypeError("pass num_classes as its own argument")
    num_classes = record.num_classes if num_classes is None else int(num_classes)
    if num_classes == record.num_classes:
        overrides.setdefault("class_names", record.class_names)
        overrides.setdefault("palette", record.palette_array())
    model = factory.build(record.architecture, num_classes,
                          **{**record.arch_kwargs, **overrides})
    if msc_scales:
        model = MSC(model, scales=msc_scales, **(record.msc_kwargs or {}))
    return model


def load_keras_file(path, compile=True):
    """A saved `.keras` model, loaded with `safe_mode=True` (no code from the file runs).

    Raises ValueError for other extensions and FileNotFoundError naming a missing file.
    `compile=False` skips restoring the optimizer, loss and metrics (to compile anew).
    """
    import keras

    if not str(path).endswith(".keras"):
        raise ValueError(f"load_model({path!r}): only `.keras` files load here (safe_mode). "
                         "For weight files build the model and call model.load_weights(path).")
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file {path!r}.")
    _check_keras_archive(path)
    return keras.saving.load_model(path, safe_mode=True, compile=compile)


def _check_keras_archive(path):
    """A `.keras` file is a zip holding config.json and model.weights.h5; say which part is
    missing before Keras reports a misleading "File not found"."""
    import zipfile

    size = os.path.getsize(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"load_model({path!r}): not a .keras file ({size} bytes, not a zip "
                         "archive): it is truncated (an interrupted copy or download), or another "
                         "format renamed to .keras (weights files load with "
                         "model.load_weights). Copy or save it again.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"load_model({path!r}): the .keras archive is damaged ({err}); copy "
                         "or save it again.") from None
    missing = [n for n in ("config.json", "model.weights.h5") if n not in names]
    if missing or broken is not None:
        what = f"lacks {missing}" if missing else f"has a corrupt member {broken!r}"
        raise ValueError(f"load_model({path!r}): the .keras archive {what}; it was not "
                         "written by model.save(...) or is damaged. Save it again.")


def _looks_like_path(value):
    if isinstance(value, os.PathLike):
        return True
    if not isinstance(value, str):
        raise TypeError(f"load_model expects a registry name or a path; received {value!r}.")
    return value.endswith((".keras", ".h5")) or os.sep in value or os.path.exists(value)


__all__ = ["build_from_record", "load_keras_file", "load_model"]
