"""Measures a bundled CamVid model for its model card; writes `evaluation.json`.

On CamVid val (never trained on), with the model loaded exactly as users load it
(`deeplab_keras.load_model(name)`, the float16 bundled file):

1. single scale: mIoU, per-class IoU, pixel accuracy;
2. float16 check: the float32 `.keras` model (`--reference`) on the same images;
3. dense-CRF parameters tuned on val by coordinate search (on every
   `--crf_subset`-th image, 10 mean-field iterations), then scored on all of val;
4. multi-scale + flip (`--ms_scales`, relative to the model's input), with and
   without the tuned CRF.

Results go into `deeplab_keras/assets/models/<name>/evaluation.json` (kept: the
training record `zoo/export_bundled.py` wrote), rendered by the model card.

Usage:
    python zoo/evaluate_camvid.py --name deeplabv3plus_mobilenetv2_camvid \\
        --data_dir ../shared/data/camvid --reference runs/camvid_stage2/model.keras
"""

import json
import os
import shlex
import sys
import time

import numpy as np
from absl import app
from absl import flags

_NAME = flags.DEFINE_string("name", "deeplabv3plus_mobilenetv2_camvid", "Registry name.")
_DATA_DIR = flags.DEFINE_string("data_dir", "../shared/data/camvid", "CamVid root.")
_SPLIT = flags.DEFINE_string("split", "val", "Split to score (never the test split here).")
_REFERENCE = flags.DEFINE_string("reference", None, "Float32 .keras model the bundled weights "
                                 "came from (float16 check).")
_DEVICE_LOG = flags.DEFINE_string("device_log", None, "train_log.json of a GPU run "
                                  "(zoo/camvid_gpu/train_on_device.py): without --reference, its "
                                  "float16 check (the best weights in float32 and stored as "
                                  "float16, scored on val on the device) goes into the card.")
_CRF_SUBSET = flags.DEFINE_integer("crf_subset", 3, "CRF search on every N-th image.")
_MS_SCALES = flags.DEFINE_list("ms_scales", ["0.75", "1.0", "1.25", "1.5"],
                               "Multi-scale inputs, relative to the model's input.")
_MAX_IMAGES = flags.DEFINE_integer("max_images", None, "Only the first N images (trial runs; "
                                   "does not write evaluation.json).")
_WRITE = flags.DEFINE_bool("write", True, "Write evaluation.json.")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Coordinate search: start from the DeepLab ResNet-101 VOC preset, then try each parameter's
# values in turn, keeping a change only when it raises the subset's mIoU.
CRF_START = (4.0, 67.0, 3.0, 3.0, 1.0)
CRF_GRID = ((1, (20.0, 40.0, 67.0, 100.0)),   # theta_alpha (pixels)
            (2, (3.0, 5.0, 8.0, 13.0)),        # theta_beta (intensity)
            (0, (2.0, 4.0, 6.0, 10.0)),        # w1, appearance weight
            (4, (1.0, 3.0)),                   # theta_gamma
            (3, (1.0, 3.0)))                   # w2, smoothness weight


def _every(k):
    """'every val image', 'every third val image', ..."""
    ordinal = {1: "", 2: "second ", 3: "third ", 4: "fourth "}.get(k, f"{k}th ")
    return f"every {ordinal}val image"


def confusion(labels_list, masks, num_classes, ignore_label, class_names):
    from deeplab_keras.evaluation import ConfusionMatrix

    cm = ConfusionMatrix(num_classes, ignore_label, class_names)
    for labels, mask in zip(labels_list, masks):
        cm.update(mask, labels)
    return cm


def summary(setting, cm, scales, flip, crf, seconds):
    per_class = [None if v != v else float(v) for v in cm.per_class_iou()]
    return {"setting": setting, "scales": [float(s) for s in scales], "flip": bool(flip),
            "crf": list(crf) if crf else None, "miou": float(cm.miou),
            "pixel_accuracy": float(cm.pixel_accuracy()), "per_class_iou": per_class,
            "seconds_per_image": float(seconds)}


class CRFRunner:
    """Runs `DenseCRF` with given parameters over stored unaries; one layer per setting."""

    def __init__(self, images):
        self.images = images

    def labels(self, params, log_probs, indices, progress=None):
        from deeplab_keras.layers import DenseCRF

        crf = DenseCRF.from_params(params)
        out = []
        for k, i in enumerate(indices):
            refined = crf([log_probs[i][None].astype(np.float32),
                           self.images[i][None].astype(np.float32)])
            out.append(np.argmax(np.asarray(refined)[0], axis=-1))
            if progress is not None:
                progress.update(k + 1)
        return out


def main(argv):
    del argv
    sys.path.insert(0, ROOT)
    import keras

    import deeplab_keras as dk
    from deeplab_keras import data
    from deeplab_keras import evaluation
    from deeplab_keras.weights import registry

    record = registry.get_record(_NAME.value)
    layout = data.get_layout("camvid")
    examples = data.list_examples(layout, _DATA_DIR.value, _SPLIT.value)
    if _SPLIT.value == "test":
        raise app.UsageError("The test split is held out: it is scored outside this project.")
    if _MAX_IMAGES.value:
        examples = examples[: _MAX_IMAGES.value]
    loaded = list(data.iterate_eval(examples, layout))
    images = [image for _, image, _ in loaded]
    masks = [mask for _, _, mask in loaded]
    n, c, ignore = len(images), record.num_classes, layout.ignore_label
    names = record.class_names
    print(f"{_NAME.value} on CamVid {_SPLIT.value}: {n} images; backend "
          f"{keras.backend.backend()}.")
    model = dk.load_model(_NAME.value)

    def predict_all(net, scales=(1.0,), flip=False, what="single scale"):
        bar = keras.utils.Progbar(n, unit_name="image")
        log_probs, start = [], time.perf_counter()
        for i, image in enumerate(images):
            probs = evaluation.predict_probabilities(net, image, scales=scales, flip=flip)
            log_probs.append(np.log(np.clip(probs, 1e-8, None)).astype(np.float16))
            bar.update(i + 1)
        seconds = (time.perf_counter() - start) / n
        print(f"{what}: {seconds:.2f} s/image")
        return log_probs, seconds

    results = []
    single, t_single = predict_all(model)
    single_labels = [lp.argmax(-1) for lp in single]
    cm = confusion(single_labels, masks, c, ignore, names)
    print(cm.table(names))
    results.append(summary("single scale", cm, (1.0,), False, None, t_single))

    float16_check = None
    if _REFERENCE.value:
        reference = keras.saving.load_model(_REFERENCE.value, compile=False, safe_mode=True)
        ref_labels = [evaluation.predict_probabilities(reference, image, scales=record.msc_scales or
                                                (1.0,)).argmax(-1) for image in images]
        ref_cm = confusion(ref_labels, masks, c, ignore, names)
        agreement = float(np.mean([np.mean(a == b) for a, b in zip(ref_labels, single_labels)]))
        float16_check = {"images": f"CamVid {_SPLIT.value} ({n} images)",
                         "float32_miou": float(ref_cm.miou), "float16_miou": float(cm.miou),
                         "label_agreement": agreement}
        print(f"float16 check: float32 {100 * ref_cm.miou:.2f} vs shipped "
              f"{100 * cm.miou:.2f} mIoU; {100 * agreement:.3f}% same labels")

    if float16_check is None and _DEVICE_LOG.value:
        with open(_DEVICE_LOG.value, encoding="utf-8") as f:
            device = json.load(f)
        check = device["float16_check"]
        float16_check = {
            "images": (f"CamVid {_SPLIT.value} on the training GPU ({device['hardware']}; "
                       f"{check['compute']} arithmetic, JPEG-95 copies of the frames)"),
            "float32_miou": float(check["val_miou_float32_weights"]),
            "float16_miou": float(check["val_miou_float16_weights"]), "label_agreement": None}
        print(f"float16 check (device): float32 {100 * float16_check['float32_miou']:.2f} vs "
              f"float16 {100 * float16_check['float16_miou']:.2f} mIoU")

    runner = CRFRunner(images)
    subset = list(range(0, n, max(1, _CRF_SUBSET.value)))
    subset_masks = [masks[i] for i in subset]
    tried = {}

    def score(params):
        params = tuple(float(v) for v in params)
        if params not in tried:
            bar = keras.utils.Progbar(len(subset), unit_name="image")
            labels = runner.labels(params, single, subset, bar)
            tried[params] = float(confusion(labels, subset_masks, c, ignore, names).miou)
            print(f"CRF {params}: subset mIoU {100 * tried[params]:.2f}")
        return tried[params]

    no_crf_subset = float(confusion([single_labels[i] for i in subset], subset_masks, c,
                                    ignore, names).miou)
    print(f"No CRF on the search subset ({len(subset)} images): {100 * no_crf_subset:.2f}")
    best = CRF_START
    best_score = score(best)
    for index, values in CRF_GRID:
        for value in values:
            trial = list(best)
            trial[index] = value
            trial_score = score(trial)
            if trial_score > best_score:
                best, best_score = tuple(trial), trial_score
    print(f"Best CRF {best}: subset mIoU {100 * best_score:.2f} (no CRF "
          f"{100 * no_crf_subset:.2f})")
    crf_search = {
        "description": (f"Coordinate search from {CRF_START} (the DeepLab ResNet-101 VOC "
                        f"preset) over each parameter in turn, 10 mean-field iterations, on "
                        f"{_every(_CRF_SUBSET.value)} ({len(subset)} "
                        f"images; without the CRF they score {100 * no_crf_subset:.2f})."),
        "trials": [{"crf": list(p), "miou": s} for p, s in tried.items()],
        "best": list(best), "subset_images": len(subset), "no_crf_miou": no_crf_subset}

    def score_with_crf(log_probs, seconds, setting, scales, flip):
        """The setting's predictions refined by the best CRF, over all images."""
        start = time.perf_counter()
        labels = runner.labels(best, log_probs, range(n), keras.utils.Progbar(
            n, unit_name="image"))
        seconds += (time.perf_counter() - start) / n
        cm = confusion(labels, masks, c, ignore, names)
        print(f"{setting} + CRF\n" + cm.table(names))
        return summary(f"{setting} + CRF", cm, scales, flip, best, seconds)

    results.append(score_with_crf(single, t_single, "single scale", (1.0,), False))
    ms_scales = tuple(float(s) for s in _MS_SCALES.value)
    multi, t_multi = predict_all(model, ms_scales, True, "multi-scale + flip")
    cm = confusion([lp.argmax(-1) for lp in multi], masks, c, ignore, names)
    print("Multi-scale + flip\n" + cm.table(names))
    results.append(summary("multi-scale + flip", cm, ms_scales, True, None, t_multi))
    results.append(score_with_crf(multi, t_multi, "multi-scale + flip", ms_scales, True))

    print("\n| Setting | mIoU | s/image |\n|---|---|---|")
    for r in results:
        print(f"| {r['setting']} | {100 * r['miou']:.2f} | {r['seconds_per_image']:.2f} |")
    if _MAX_IMAGES.value or not _WRITE.value:
        print("Trial run: evaluation.json not written.")
        return 0
    path = dk.assets.package_path(record.evaluation)
    with open(path, encoding="utf-8") as f:
        payload = json.load(f)
    payload.update({
        "dataset": f"CamVid {_SPLIT.value} ({n} images, 360x480, void ignored)",
        "command": shlex.join(["python", "zoo/evaluate_camvid.py"] + sys.argv[1:]),
        "backend": keras.backend.backend(), "weights_sha256": record.sha256,
        "results": results, "crf_search": crf_search, "float16_check": float16_check})
    from deeplab_keras import files

    files.write_json_atomic(path, payload)
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
