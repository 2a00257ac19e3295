#!/usr/bin/env bash
# A new user's journey with their own data (issue 14), from fresh virtual environments:
# a 4-class folder dataset from 20 CamVid train pairs, `deeplab-keras train` for 50 steps,
# `evaluate`, `predict` (panels with a 4-name legend), then only the .keras file copied to a
# TensorFlow-free venv and predicted again under JAX.
#   bash docs/journeys/own_data.sh [WORK_DIR] [CAMVID_DIR]
# Prints every command and its output; predictions land under WORK_DIR/runs and
# WORK_DIR/elsewhere. The last run of it: docs/journeys/own_data.log, made with
#   bash docs/journeys/own_data.sh 2>&1 | python3 docs/journeys/clean_log.py > docs/journeys/own_data.log
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-/tmp/own_data_journey}
CAMVID=${2:-$REPO/../shared/data/camvid}
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
export PIP_DISABLE_PIP_VERSION_CHECK=1
step() { echo; echo "\$ $*"; "$@"; }

echo "== fresh venv with TensorFlow (the README's install)"
python3 -m venv tf_venv
tf_venv/bin/python -m pip install -q -e "$REPO"

echo "== a 4-class folder dataset from 20 CamVid train pairs (sky, building, road, car; rest 255)"
tf_venv/bin/python - "$CAMVID" <<'PY'
import os, sys
import numpy as np
from PIL import Image
camvid = sys.argv[1]
names = sorted(os.listdir(os.path.join(camvid, "train")))[::18][:20]
keep = {0: 0, 1: 1, 3: 2, 8: 3}          # CamVid id -> our id
for i, name in enumerate(names):
    split = "train" if i < 16 else "val"
    for sub in ("images", "masks"):
        os.makedirs(f"mydata/{sub}/{split}", exist_ok=True)
    stem = os.path.splitext(name)[0]
    Image.open(os.path.join(camvid, "train", name)).convert("RGB").save(
        f"mydata/images/{split}/{stem}.jpg", quality=95)
    label = np.asarray(Image.open(os.path.join(camvid, "trainannot", name)))
    mask = np.full(label.shape, 255, np.uint8)
    for source, target in keep.items():
        mask[label == source] = target
    Image.fromarray(mask).save(f"mydata/masks/{split}/{stem}.png")
print("16 train + 4 val pairs written under mydata/")
PY
printf 'sky\nbuilding\nroad\ncar\n' > classes.txt
mkdir -p photos && cp mydata/images/val/*.jpg photos/

DK=tf_venv/bin/deeplab-keras
step $DK train --dataset folder --data_dir mydata --class_names classes.txt \
    --model deeplabv3plus_mobilenetv2_camvid --crop_size 256,256 --scale_range 0.75,1.25 \
    --batch_size 4 --steps 50 --learning_rate 1e-3 --checkpoint_every 25 --eval_every 1 \
    --output_dir runs/mine
step $DK evaluate --dataset folder --data_dir mydata --class_names classes.txt \
    --model runs/mine/model.keras --output_dir runs/mine
step $DK predict --model runs/mine/model.keras --images "photos/*.jpg" \
    --output_dir runs/mine/predictions

echo "== TensorFlow-free venv (JAX only); only the .keras file is copied"
python3 -m venv jax_venv
jax_venv/bin/python -m pip install -q "keras>=3.10,<4" "jax[cpu]>=0.4.30" "numpy>=1.26,<3" \
    "pillow>=10" "absl-py>=2"
jax_venv/bin/python -m pip install -q --no-deps -e "$REPO"
jax_venv/bin/python -c "import tensorflow" 2>/dev/null && { echo "TensorFlow found"; exit 1; }
mkdir -p elsewhere && cp runs/mine/model.keras elsewhere/mine.keras
step jax_venv/bin/deeplab-keras predict --backend jax --model elsewhere/mine.keras \
    --images "photos/*.jpg" --output_dir elsewhere/predictions
step jax_venv/bin/python -c "
import deeplab_keras as dk, keras
model = dk.load_model('elsewhere/mine.keras')
result = dk.segment(model, 'photos/$(ls photos | head -1)')
print(keras.backend.backend(), model.class_names, model.palette.tolist())
print({k: round(v, 3) for k, v in result.class_fractions(model.class_names).items()})"
