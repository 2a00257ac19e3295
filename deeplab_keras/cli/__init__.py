"""`deeplab-keras train | evaluate | predict | export`: the command line.

Your own data: a folder with `images/` and `masks/` (each with optional `train/` and `val/`
sub-folders); a mask is a single-channel PNG named like its image, holding class ids
0..N-1 and `--ignore_label` (default 255) for pixels to leave out.

    deeplab-keras train --dataset folder --data_dir mydata --class_names road,car,tree,sky \\
        --model deeplabv3plus_mobilenetv2 --backbone_weights imagenet --crop_size 256,256 \\
        --batch_size 8 --steps 2000 --output_dir runs/mine
    deeplab-keras evaluate --dataset folder --data_dir mydata --class_names road,car,tree,sky \\
        --model runs/mine/model.keras
    deeplab-keras predict --model runs/mine/model.keras --images "photos/*.jpg" \\
        --output_dir predictions
    deeplab-keras export --model runs/mine/model.keras --format litert --input_size 360,480 \\
        --quantize float16 --output mine_float16.tflite

Built-in layouts: `--dataset camvid --data_dir ../shared/data/camvid` (and voc_aug,
cityscapes, pascal_context, person_part, ade20k; see --dataset below). `--model` is an
architecture to train from scratch, a registry name (`deeplab_keras.list_models()`, e.g.
deeplabv3plus_resnet50w40_camvid) or a saved `.keras` file, which carries its class names and
colours. `--backend jax` (or $KERAS_BACKEND) picks the Keras backend; training on JAX uses the
TensorFlow-free input pipeline.
"""

from deeplab_keras.cli.flags import COMMANDS
from deeplab_keras.cli.flags import FLAGS
from deeplab_keras.cli.main import main_entry
from deeplab_keras.cli.main import run

COMMAND_HELP = {
    "train": "trains --model on --dataset; checks every image/mask pair first, then writes "
             "checkpoints, TensorBoard logs, model.keras (with its class names and colours), "
             "run.json and, when there is a validation split, metrics_val.json.",
    "evaluate": "scores --model on a split (default val): per-class IoU table, mIoU, and how "
                "many images were scored out of how many were found; writes "
                "metrics_<split>.json.",
    "predict": "segments the --images glob with --model; writes mask, overlay and panel PNGs "
               "(panels carry a legend with the model's class names).",
    "export": "writes --model for deployment as a SavedModel folder, a LiteRT (.tflite) or an "
              "ONNX file (uint8 images in; labels and probabilities out; class names and "
              "palette included), then checks it against the Keras model on the bundled "
              "example images.",
}

__all__ = ["COMMANDS", "COMMAND_HELP", "FLAGS", "main_entry", "run"]
