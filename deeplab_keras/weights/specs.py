"""What a weight record is: `WeightRecord`, `Preprocessing`, `Metric`, `BackboneWeights`, and
`validate`, which checks a record field by field.

Example:

```python
from deeplab_keras.weights import specs

record = specs.WeightRecord(name="mine_voc", ...)
specs.validate(record)        # ValueError naming the record and the field
```
"""

import dataclasses
import re

import numpy as np

from deeplab_keras.convert import dispatch
from deeplab_keras.crf import params as crf_params
from deeplab_keras.data import classes
from deeplab_keras.models import factory

FILE_FORMATS = ("caffemodel-zip", "caffemodel", "tf1-tarball", "torch-pth", "keras-h5",
                "bundled-h5")
MSC_OPTIONS = ("align_corners", "size_rule")
# Weights already in our own converted-h5 format: loaded as they are, no converter runs.
OWN_FORMAT = "deeplab_keras_h5"
RESIZE_MODES = ("pad-crop", "resize-short-side", "full-image")


def converters():
    """The converter names a record may give: `convert.dispatch.CONVERTERS` and our own h5."""
    return tuple(sorted(dispatch.CONVERTERS)) + (OWN_FORMAT,)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What the weights expect; the built model applies it itself.

    Models take RGB float32 images in 0..255 and compute
    `(x[..., order] - mean) / std` inside (`ImageNormalization`), so `mean`
    and `std` are in 0..255 units and in the *network's* channel order.

    Attributes:
        mean, std: 3 floats each.
        channel_order: "rgb" or "bgr" (Caffe).
        input_size: (height, width) the weights were evaluated at (crop or
            resize size); the model itself takes any size.
        resize: how the source evaluated: "pad-crop" (pad to `input_size`),
            "resize-short-side" (torchvision `resize_size`), "full-image".
        source: where the values come from.
    """

    mean: tuple
    std: tuple
    channel_order: str
    input_size: tuple
    resize: str
    source: str


@dataclasses.dataclass(frozen=True)
class Metric:
    """A reported number and where it was reported (never one we made up)."""

    name: str
    value: float
    dataset: str
    setting: str
    source: str
    verified: bool = True


@dataclasses.dataclass(frozen=True)
class WeightRecord:
    """One weight set: how to build the model, where its weights come from.

    Attributes:
        name: public name, e.g. "deeplab_resnet101_voc".
        summary: one line for listings.
        architecture: class name in `deeplab_keras.models`.
        arch_kwargs: constructor arguments (without `num_classes`).
        msc_scales: wrap in `models.MSC(scales=...)`, or None.
        msc_kwargs: more `models.MSC` arguments (`align_corners`, `size_rule`).
        num_classes, class_names: the output channels and their names.
        palette: colour map name ("voc", "cityscapes", "camvid"; see
            `deeplab_keras.data.classes.palette`).
        preprocessing: a `Preprocessing`.
        crf: DenseCRF parameters as released with the weights (a
            `crf.params.CRFParams`, usually a preset), or None.
        crf_source: where the CRF values come from.
        metrics: tuple of `Metric`.
        urls: original download URLs, first is preferred (empty for bundled
            weights).
        file_format: one of `FILE_FORMATS`.
        member: path of the weights inside the archive (None: the file
            itself); for TF1 tarballs the checkpoint prefix.
        sha256, md5, size: published integrity data of the source file;
            `sha256_prefix` is torchvision's 8-hex filename hash.
        tofu: True when no hash is published: the sha256 is recorded on
            first download and verified afterwards (trust on first use).
        converter: one of `converters()`.
        license, paper: provenance.
        num_params: parameter count of the model built from this record
            (checked by the schema test).
        notes: anything a user should know (tuple of lines).
        bundled: for weights shipped inside the package: their path relative
            to the `deeplab_keras` folder (file_format "bundled-h5", sha256
            pinned and checked on every load, no network).
        verified: what was checked against a public source that was read, each
            "what: where" (URL, archive members, layer names and shapes, metrics).
        unverified: what was not checked (say so rather than guess).
        evaluation: path (relative to the `deeplab_keras` folder) of the JSON
            our own evaluation wrote (per-class IoU, CRF search, training
            recipe); the model card renders it.
    """

    name: str
    summary: str
    architecture: str
    arch_kwargs: dict = dataclasses.field(hash=False)
    num_classes: int
    class_names: tuple
    palette: str
    preprocessing: Preprocessing
    metrics: tuple
    urls: tuple
    file_format: str
    converter: str
    license: str
    paper: str
    num_params: int
    msc_scales: tuple = None
    msc_kwargs: dict = dataclasses.field(default=None, hash=False)
    member: str = None
    crf: tuple = None
    crf_source: str = None
    sha256: str = None
    sha256_prefix: str = None
    md5: str = None
    size: int = None
    tofu: bool = False
    notes: tuple = ()
    bundled: str = None
    evaluation: str = None
    verified: tuple = ()
    unverified: tuple = ()

    @property
    def hash_status(self):
        """A sentence saying how the source file is verified."""
        if self.bundled:
            return "sha256 pinned in the record, checked on every load"
        if self.sha256:
            return "sha256 pinned in the record"
        if self.md5:
            return "md5 published by the source (verified on download)"
        if self.sha256_prefix:
            return (f"sha256 prefix {self.sha256_prefix} published in the file name; the full "
                    "sha256 is recorded once the download has converted and verified after")
        return ("no hash published: the sha256 is recorded once the download has converted "
                "and verified on every later use")

    def palette_array(self):
        """`[num_classes, 3]` uint8 colours for this record's classes."""
        return classes.palette(self.palette, self.num_classes)


@dataclasses.dataclass(frozen=True)
class BackboneWeights:
    """A keras.applications no-top ImageNet weight file for one of our backbones.

    Attributes:
        backbone: our backbone name (`deeplab_keras.backbones`).
        application: keras.applications constructor name.
        application_kwargs: its arguments (besides weights/include_top).
        url, md5: the file and the md5 keras publishes (None: recorded on
            first download, `tofu`).
        preprocessing: what the weights expect (mean, std, channel order).
        license: terms as far as known.
    """

    backbone: str
    application: str
    application_kwargs: dict
    url: str
    md5: str
    preprocessing: Preprocessing
    license: str

    @property
    def tofu(self):
        return self.md5 is None

    @property
    def filename(self):
        return self.url.rsplit("/", 1)[1]


_HEX = re.compile(r"^[0-9a-f]+$")


def validate(record):
    """Raises ValueError naming the record and field when a record is malformed."""
    def fail(message):
        raise ValueError(f"Weight record {record.name!r}: {message}")

    if not re.match(r"^[a-z0-9_.]+$", record.name or ""):
        fail("`name` must be lower-case letters, digits, '_' or '.'.")
    architectures = sorted(cls.__name__ for cls in factory.FAMILIES.values())
    if record.architecture not in architectures:
        fail(f"`architecture` must be one of {architectures}; got {record.architecture!r}.")
    if set(record.msc_kwargs or {}) - set(MSC_OPTIONS):
        fail(f"`msc_kwargs` may hold {MSC_OPTIONS}; got {sorted(record.msc_kwargs)}.")
    if record.msc_kwargs and not record.msc_scales:
        fail("`msc_kwargs` without `msc_scales`.")
    if "num_classes" in record.arch_kwargs:
        fail("put the class count in `num_classes`, not in `arch_kwargs`.")
    if int(record.num_classes) < 1 or len(record.class_names) != record.num_classes:
        fail(f"{len(record.class_names)} class names for num_classes={record.num_classes}.")
    if record.palette not in classes.PALETTES:
        fail(f"`palette` must be one of {sorted(classes.PALETTES)}; got {record.palette!r}.")
    pre = record.preprocessing
    if len(pre.mean) != 3 or len(pre.std) != 3 or min(pre.std) <= 0:
        fail(f"preprocessing needs 3 means and 3 positive stds; got {pre.mean}, {pre.std}.")
    if pre.resize not in RESIZE_MODES:
        fail(f"preprocessing resize must be one of {RESIZE_MODES}; got {pre.resize!r}.")
    if pre.channel_order not in ("rgb", "bgr"):
        fail(f"preprocessing channel_order must be 'rgb' or 'bgr'; got {pre.channel_order!r}.")
    for key in ("mean", "std", "channel_order"):
        if key in record.arch_kwargs and tuple(np.ravel(record.arch_kwargs[key])) != tuple(
                np.ravel(getattr(pre, key))):
            fail(f"arch_kwargs[{key!r}] differs from preprocessing.{key}.")
    if record.crf is not None:
        try:
            crf_params.as_params(record.crf)
        except ValueError as error:
            fail(f"`crf`: {error}")
        if not record.crf_source:
            fail("`crf` needs a `crf_source` saying where the values come from.")
    if not record.metrics or any(not m.source for m in record.metrics):
        fail("every record needs at least one metric, each with a `source`.")
    if (record.bundled is not None) != (record.file_format == "bundled-h5"):
        fail("`bundled` (a path inside the package) goes with file_format 'bundled-h5'.")
    if record.bundled is not None and not record.sha256:
        fail("bundled weights need their `sha256` pinned.")
    if (not record.urls and record.bundled is None) or any(
            not u.startswith(("http://", "https://", "file://")) for u in record.urls):
        fail(f"`urls` must be http(s):// or file:// URLs; got {record.urls}.")
    if record.file_format not in FILE_FORMATS:
        fail(f"`file_format` must be one of {FILE_FORMATS}; got {record.file_format!r}.")
    if record.converter not in converters():
        fail(f"`converter` must be one of {converters()}; got {record.converter!r}.")
    for field, length in (("sha256", 64), ("md5", 32), ("sha256_prefix", None)):
        value = getattr(record, field)
        if value is not None and (not _HEX.match(value) or (length and len(value) != length)):
            fail(f"`{field}` must be {length or 'some'} lower-case hex digits; got {value!r}.")
    if record.sha256_prefix and record.sha256_prefix not in record.urls[0]:
        fail("`sha256_prefix` must appear in the first URL's file name (torch.hub scheme).")
    if record.tofu != (record.sha256 is None and record.md5 is None):
        fail("`tofu` must be True exactly when neither sha256 nor md5 is published.")
    if record.size is not None and int(record.size) <= 0:
        fail(f"`size` must be positive bytes; got {record.size}.")
    if int(record.num_params) < 1:
        fail("`num_params` must be the built model's parameter count.")
    if not record.license or not record.paper:
        fail("`license` and `paper` are required.")
    if not record.verified:
        fail("`verified` must say what was checked against which public source (or, for our "
             "own weights, how they were measured).")
    return record


__all__ = ["BackboneWeights", "FILE_FORMATS", "Metric", "OWN_FORMAT", "Preprocessing",
           "RESIZE_MODES", "WeightRecord", "converters", "validate"]
