"""The pretrained-weight registry: one `WeightRecord` per weight set.

Records live in `deeplab_keras/weights/records.py` and are registered with
`register(record)`; `list_models()` and `get_record(name)` read them.
The records carry everything a user or a model card needs: architecture,
classes, palette, preprocessing, CRF parameters, metrics with their source,
where the original file lives, how it is verified, license and paper.

Example:

```python
from deeplab_keras.weights import registry
registry.list_models("deeplabv3*")
record = registry.get_record("deeplab_resnet101_voc")
record.num_classes, record.preprocessing.mean, record.crf
```
"""

import dataclasses
import difflib
import fnmatch
import json
import os
import re

import numpy as np

FILE_FORMATS = ("caffemodel-zip", "tf1-tarball", "torch-pth", "keras-h5", "bundled-h5")
CONVERTERS = ("caffe", "tf_slim", "torchvision", "deeplab_keras_h5")
ARCHITECTURES = ("DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus")
PALETTES = ("voc", "cityscapes", "camvid")
RESIZE_MODES = ("pad-crop", "resize-short-side", "full-image")


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
        num_classes, class_names: the output channels and their names.
        palette: colour map name ("voc", "cityscapes"); see `palette()`.
        preprocessing: a `Preprocessing`.
        crf: DenseCRF parameters (w1, theta_alpha, theta_beta, w2,
            theta_gamma) as released with the weights, or None.
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
        converter: one of `CONVERTERS`.
        license, paper: provenance.
        num_params: parameter count of the model built from this record
            (checked by the schema test).
        notes: anything a user should know (tuple of lines).
        bundled: for weights shipped inside the package: their path relative
            to the `deeplab_keras` folder (file_format "bundled-h5", sha256
            pinned and checked on every load, no network).
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
                    "sha256 is recorded on first download and verified after")
        return "no hash published: the sha256 is recorded on first download and verified after"

    def palette_array(self):
        """`[num_classes, 3]` uint8 colours for this record's classes."""
        return palette(self.palette, self.num_classes)


_REGISTRY = {}


def register(record):
    """Adds `record` to the registry (validated); returns it, so it decorates too.

    Example:

    ```python
    registry.register(WeightRecord(name="my_model_voc", ...))
    ```
    """
    validate(record)
    if record.name in _REGISTRY and _REGISTRY[record.name] != record:
        raise ValueError(f"A different weight record named {record.name!r} is already "
                         "registered; pick another name or `unregister` it first.")
    _REGISTRY[record.name] = record
    return record


def unregister(name):
    """Removes a record (tests and user-registered entries)."""
    _REGISTRY.pop(name, None)


def list_models(pattern=None):
    """Sorted registered names, optionally filtered by an fnmatch `pattern`.

    Example:

    ```python
    deeplab_keras.list_models("*_voc")
    ```
    """
    _ensure_loaded()
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def get_record(name):
    """The `WeightRecord` called `name`; ValueError listing close names otherwise.

    Example:

    ```python
    deeplab_keras.weights.get_record("deeplabv3_resnet101_coco").metrics
    ```
    """
    _ensure_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise ValueError(unknown_name_message(name))


def unknown_name_message(name):
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (f"Unknown model {name!r}.{hint} Registered models: {sorted(_REGISTRY)}. "
            "A path to a saved model must end in '.keras'.")


def _ensure_loaded():
    from deeplab_keras.weights import records  # noqa: F401  (registers the entries)


_HEX = re.compile(r"^[0-9a-f]+$")


def validate(record):
    """Raises ValueError naming the record and field when a record is malformed."""
    def fail(message):
        raise ValueError(f"Weight record {record.name!r}: {message}")

    if not re.match(r"^[a-z0-9_.]+$", record.name or ""):
        fail("`name` must be lower-case letters, digits, '_' or '.'.")
    if record.architecture not in ARCHITECTURES:
        fail(f"`architecture` must be one of {ARCHITECTURES}; got {record.architecture!r}.")
    if "num_classes" in record.arch_kwargs:
        fail("put the class count in `num_classes`, not in `arch_kwargs`.")
    if int(record.num_classes) < 1 or len(record.class_names) != record.num_classes:
        fail(f"{len(record.class_names)} class names for num_classes={record.num_classes}.")
    if record.palette not in PALETTES:
        fail(f"`palette` must be one of {PALETTES}; got {record.palette!r}.")
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
    if record.crf is not None and (len(record.crf) != 5 or not record.crf_source):
        fail("`crf` needs 5 values (w1, theta_alpha, theta_beta, w2, theta_gamma) and a "
             "`crf_source`.")
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
    if record.converter not in CONVERTERS:
        fail(f"`converter` must be one of {CONVERTERS}; got {record.converter!r}.")
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
    return record


def palette(name, num_classes):
    """`[num_classes, 3]` uint8 colours for palette `name`."""
    from deeplab_keras.visualize import voc_palette

    if name == "voc":
        return voc_palette(num_classes)
    if name == "cityscapes":
        from deeplab_keras.data.layouts import CITYSCAPES_LABELS

        colours = np.zeros((num_classes, 3), np.uint8)
        for _, _, train_id, colour in CITYSCAPES_LABELS:
            if train_id < num_classes:
                colours[train_id] = colour
        return colours
    if name == "camvid":
        from deeplab_keras.visualize import CAMVID_PALETTE

        return np.asarray(CAMVID_PALETTE[:num_classes], np.uint8)
    raise ValueError(f"Unknown palette {name!r}; available: {PALETTES}.")


def model_card(name_or_record):
    """The model card of a record as Markdown (what `zoo/<name>.md` holds).

    Example:

    ```python
    print(deeplab_keras.weights.registry.model_card("deeplabv3_mobilenetv2_voc"))
    ```
    """
    r = name_or_record if isinstance(name_or_record, WeightRecord) else get_record(name_or_record)
    pre = r.preprocessing
    args = ", ".join(f"{k}={v!r}" for k, v in r.arch_kwargs.items())
    build = f"models.{r.architecture}(num_classes={r.num_classes}, {args})"
    if r.msc_scales:
        build = f"models.MSC({build}, scales={r.msc_scales})"
    lines = [
        f"# {r.name}", "", r.summary, "",
        "<!-- Generated by zoo/make_cards.py from deeplab_keras/weights/records.py; "
        "do not edit by hand. -->", "",
        "## Use", "", "```python", "import deeplab_keras as dk",
        f'model = dk.load_model("{r.name}")',
        "logits = model.predict(images)  # RGB float32 0..255, any size -> logits at input size",
        "```", "",
        "## Architecture", "", f"`{build}`", "",
        f"Parameters: {r.num_params:,} (the model built from this record; checked by "
        "`tests/test_weights_registry.py`).", "",
        "## Preprocessing (inside the model)", "",
        f"- mean {pre.mean}, std {pre.std} (0..255 units), channel order `{pre.channel_order}`",
        f"- evaluation input: {_describe_input(pre)}; the model itself takes any size",
        f"- source: {pre.source}", "",
        "## Dense CRF", "",
    ]
    if r.crf:
        lines += [f"(w1, theta_alpha, theta_beta, w2, theta_gamma) = {r.crf}", "",
                  f"Source: {r.crf_source}", ""]
    else:
        lines += ["None released with these weights.", ""]
    lines += ["## Measured metrics" if r.bundled else "## Reported metrics", "",
              "| Metric | Value | Dataset | Setting | Source |", "|---|---|---|---|---|"]
    for m in r.metrics:
        value = f"{m.value:.2f}" + ("" if m.verified else " (unverified)")
        lines.append(f"| {m.name} | {value} | {m.dataset} | {m.setting} | {m.source} |")
    lines += ["", "Measured by this project (see below)." if r.bundled else
              "These are the source's published numbers, not measured here.", ""]
    if r.evaluation:
        lines += evaluation_section(load_evaluation(r), r.class_names)
    lines += [f"## Classes ({r.num_classes}, palette `{r.palette}`)", "",
              ", ".join(f"{i}: {c}" for i, c in enumerate(r.class_names)), "",
              "## Source", ""]
    lines += [f"- {url}" for url in r.urls]
    if r.bundled:
        lines.append(f"- bundled in the package: `deeplab_keras/{r.bundled}`"
                     + (f" ({r.size / 1e6:.1f} MB)" if r.size else "") + "; no download")
    lines += [f"- format: `{r.file_format}`" + (f", member `{r.member}`" if r.member else ""),
              f"- converter: `{r.converter}`",
              f"- integrity: {r.hash_status}" + (f" (md5 `{r.md5}`)" if r.md5 else "")
              + (f" (sha256 `{r.sha256}`)" if r.sha256 else ""),
              "", "## License and paper", "", f"- license: {r.license}", f"- paper: {r.paper}"]
    if r.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in r.notes]
    return "\n".join(lines) + "\n"


PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_path(relative):
    """Absolute path of a file shipped inside the `deeplab_keras` package."""
    return os.path.join(PACKAGE_DIR, *relative.split("/"))


def load_evaluation(record):
    """The evaluation JSON of a record (`record.evaluation`), as a dict."""
    path = package_path(record.evaluation)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{record.name}: cannot read its evaluation file {path} ({e}); "
                         "reinstall the package or rerun zoo/evaluate_camvid.py.") from e


def _pct(value):
    return "n/a" if value is None else f"{100 * value:.2f}"


def evaluation_section(result, class_names):
    """Markdown for an evaluation JSON written by `zoo/evaluate_camvid.py`."""
    lines = [f"## Evaluation: {result['dataset']}", "",
             f"Command: `{result['command']}`", ""]
    settings = result["results"]
    lines += ["| Class | " + " | ".join(s["setting"] for s in settings) + " |",
              "|---|" + "---|" * len(settings)]
    for i, name in enumerate(class_names):
        lines.append(f"| {name} | " + " | ".join(_pct(s["per_class_iou"][i]) for s in settings)
                     + " |")
    lines.append("| **mean IoU** | " + " | ".join(f"**{_pct(s['miou'])}**" for s in settings)
                 + " |")
    lines.append("| pixel accuracy | " + " | ".join(_pct(s["pixel_accuracy"]) for s in settings)
                 + " |")
    lines.append("")
    for s in settings:
        crf = f"dense CRF {tuple(s['crf'])}" if s.get("crf") else "no CRF"
        lines.append(f"- {s['setting']}: input scales {tuple(s['scales'])} of the model's input"
                     f"{', + horizontal flip' if s['flip'] else ''}, {crf}, "
                     f"{s['seconds_per_image']:.2f} s/image")
    lines.append("")
    search = result.get("crf_search")
    if search:
        lines += ["### Dense-CRF parameters, tuned on val", "",
                  f"{search['description']} Best: (w1, theta_alpha, theta_beta, w2, theta_gamma)"
                  f" = {tuple(search['best'])}.", "",
                  "| w1 | theta_alpha | theta_beta | w2 | theta_gamma | mIoU |",
                  "|---|---|---|---|---|---|"]
        for trial in search["trials"]:
            lines.append("| " + " | ".join(f"{v:g}" for v in trial["crf"])
                         + f" | {_pct(trial['miou'])} |")
        lines.append("")
    check = result.get("float16_check")
    if check:
        lines += ["### Float16 storage check", "",
                  f"The shipped file stores weights in float16 (BN statistics in float32). On "
                  f"{check['images']}: float32 model {_pct(check['float32_miou'])} mIoU, "
                  f"shipped model {_pct(check['float16_miou'])} mIoU; "
                  f"{100 * check['label_agreement']:.3f}% of pixels get the same label.", ""]
    training = result.get("training")
    if training:
        lines += ["## Training", "", f"Hardware: {training['hardware']}. Software: "
                  f"{training['software']}.", "",
                  f"Recipe: {training['recipe']}", "",
                  "| Stage | Steps | Batch | Epochs | Wall time (min) | val mIoU at the end "
                  "| Command |", "|---|---|---|---|---|---|---|"]
        for k, stage in enumerate(training["stages"], 1):
            lines.append(f"| {k} | {stage['steps']} | {stage['batch_size']} | "
                         f"{stage['epochs']:.0f} | {stage['minutes']:.1f} | "
                         f"{_pct(stage['val_miou'])} (scales {tuple(stage['val_scales'])}) | "
                         f"`{stage['command']}` |")
        total = sum(stage["minutes"] for stage in training["stages"])
        lines += ["", f"Total training wall time: {total:.1f} min.", ""]
    return lines


def _describe_input(pre):
    h, w = pre.input_size
    if pre.resize == "pad-crop":
        return f"images padded to {h}x{w} (crop size)"
    if pre.resize == "resize-short-side":
        return f"shorter side resized to {min(h, w)}"
    return f"full {h}x{w} images"
