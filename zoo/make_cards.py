"""Writes zoo/<name>.md (one model card per registered weight set) and zoo/README.md.

The cards are generated from `deeplab_keras/weights/records/`, so they never drift;
`tests/test_weights_registry.py` fails when they are out of date.

Usage:
    python zoo/make_cards.py           # rewrite the cards
    python zoo/make_cards.py --check   # exit 1 if any card is out of date
"""

import os
import sys

ZOO = os.path.dirname(os.path.abspath(__file__))

README_HEAD = """# zoo

Model cards for the pretrained-weight registry, one per weight set: architecture,
preprocessing, classes, dense-CRF parameters, reported metrics with their source, source file,
hash status, license and paper. They are generated from `deeplab_keras/weights/records/` by
`python zoo/make_cards.py` (do not edit them by hand; a test checks they are up to date).

```python
import deeplab_keras as dk
dk.list_models()                          # the names below
model = dk.load_model("deeplab_resnet101_voc")
```

Weights are converted on first use from the original public files (nothing is redistributed
here) and cached under `$KERAS_HOME/deeplab_keras/` (`converted/<name>.weights.h5`, verified by
sha256 on every load). Metrics are the sources' published numbers, not measured here; each card's
Provenance section says what was checked against which public source and what was not.

| Name | Architecture | Classes | Reported metric | Source format | Hash | License |
|---|---|---|---|---|---|---|
"""

README_TAIL = """
Offline use: set `DEEPLAB_KERAS_OFFLINE=1` (errors name the file and where to put it) or
`DEEPLAB_KERAS_MIRROR` to a local folder or URL prefix holding the original files, one folder
per entry: `<mirror>/<name>/<original file name>`, e.g.
`<mirror>/deeplab_resnet101_voc/prototxt_and_model.zip` (the three DeepLab v2 zips share that
file name; each card's Source section gives its path). Downloads are cached the same way,
under `$KERAS_HOME/deeplab_keras/downloads/<name>/`. A download without a published hash is
trusted (its sha256 recorded) only once it has converted.

ImageNet backbones for fine-tuning (keras.applications no-top files), e.g.
`deeplab_keras.weights.build_model("deeplabv3", 11, backbone="resnet101",
backbone_weights="imagenet")`:

| Backbone | File | md5 |
|---|---|---|
"""


def render_all():
    """`{file name: text}` for every card and the README."""
    sys.path.insert(0, os.path.dirname(ZOO))
    from deeplab_keras.weights import cards
    from deeplab_keras.weights import records
    from deeplab_keras.weights import registry

    files, rows = {}, []
    for name in registry.list_models():
        record = registry.get_record(name)
        files[f"{name}.md"] = cards.model_card(record)
        metric = record.metrics[0]
        hash_status = "md5" if record.md5 else ("sha256" if record.sha256 else (
            "sha256 prefix + TOFU" if record.sha256_prefix else "TOFU"))
        license_short = record.license.split(";")[0].split(" (")[0]
        rows.append(f"| [{name}]({name}.md) | {record.architecture} | {record.num_classes} | "
                    f"{metric.name} {metric.value:.2f} ({metric.dataset}) | "
                    f"{record.file_format} | {hash_status} | {license_short} |")
    backbone_rows = [f"| {key} | {spec.filename} | {spec.md5 or 'not published (TOFU)'} |"
                     for key, spec in sorted(records.BACKBONE_WEIGHTS.items())]
    files["README.md"] = (README_HEAD + "\n".join(rows) + "\n" + README_TAIL
                          + "\n".join(backbone_rows) + "\n")
    return files


def stale_files():
    """Names of cards whose file differs from what `render_all` gives."""
    stale = []
    for name, text in render_all().items():
        path = os.path.join(ZOO, name)
        if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
            stale.append(name)
    return stale


def main(argv):
    if "--check" in argv:
        stale = stale_files()
        if stale:
            print(f"Out of date: {stale}. Run `python zoo/make_cards.py`.")
            return 1
        print("Model cards are up to date.")
        return 0
    for name, text in render_all().items():
        with open(os.path.join(ZOO, name), "w", encoding="utf-8") as f:
            f.write(text)
        print("wrote", os.path.join("zoo", name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
