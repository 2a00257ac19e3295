"""LiteRT float16 and full-int8 exports of the bundled model on CamVid val (markers `real_data`
and `export`): int8 calibrated on CamVid *train* (disjoint from the scored images)."""

import json
import os

import keras
import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras import data
from deeplab_keras.deploy.runtimes import load_exported
from deeplab_keras.evaluation import ConfusionMatrix

CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")
pytestmark = [
    pytest.mark.real_data, pytest.mark.export,
    pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                       reason="exporting runs on the TensorFlow backend"),
]


def miou(predicted, truth, layout):
    matrix = ConfusionMatrix(layout.num_classes, layout.ignore_label)
    for labels, mask in zip(predicted, truth):
        matrix.update(mask, labels)
    return matrix.miou


@pytest.mark.parametrize("quantize, agreement", [("int8", 0.95)])
def test_quantized_litert_on_camvid_val(tmp_path, quantize, agreement):
    if not os.path.isdir(CAMVID):
        pytest.skip(f"CamVid is not at {os.path.abspath(CAMVID)}")
    pytest.importorskip("ai_edge_litert")
    model = dk.load_model("deeplabv3plus_mobilenetv2_camvid")
    layout = data.get_layout("camvid")
    pairs = [data.load_example(e, layout) for e in data.list_examples(layout, CAMVID, "val")]
    images, truth = np.stack([p[0] for p in pairs]), [p[1] for p in pairs]
    path = dk.export(model, tmp_path / f"camvid_{quantize}.tflite", format="litert",
                     input_size=(360, 480), quantize=quantize,
                     calibration_data=os.path.join(CAMVID, "train") if quantize == "int8"
                     else None)
    run = load_exported(path)
    exported = np.concatenate([run(images[i:i + 1])[0] for i in range(len(images))])
    reference = np.concatenate([np.argmax(model.predict_on_batch(
        images[i:i + 1].astype(np.float32)), -1) for i in range(len(images))])
    measured = float((exported == reference).mean())
    drop = miou(reference, truth, layout) - miou(exported, truth, layout)
    print(f"{quantize}: {measured:.4%} label agreement on CamVid val, mIoU change {-drop:+.4f}")
    assert measured >= agreement
    assert drop <= 0.01
    card = dk.get_record("deeplabv3plus_mobilenetv2_camvid").evaluation
    with open(dk.assets.package_path(card), encoding="utf-8") as f:
        figures = json.load(f).get("export")
    if figures and figures.get("val"):  # the model card's figure, reproduced
        row = next(r for r in figures["exports"] if r["export"] == f"litert_{quantize}")
        assert abs(row["val_label_agreement"] - measured) <= 0.001, (row, measured)
