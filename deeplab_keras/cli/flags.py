"""The command line's flags (absl, in a private registry), grouped by command, with per-command
help and the checks that refuse a bad value before anything starts. Imports no Keras.
"""

import functools
import json
import os

from absl import app
from absl import flags

from deeplab_keras.data import layouts

COMMANDS = ("train", "evaluate", "predict", "export")
# A private flag registry: the CLI's flags (--model, --output_dir, ...) never clash with flags
# another absl program (or `deeplab_keras.demo`) defines in the same process.
FLAGS = flags.FlagValues()
_string = functools.partial(flags.DEFINE_string, flag_values=FLAGS)
_integer = functools.partial(flags.DEFINE_integer, flag_values=FLAGS)
_float = functools.partial(flags.DEFINE_float, flag_values=FLAGS)
_bool = functools.partial(flags.DEFINE_bool, flag_values=FLAGS)
_enum = functools.partial(flags.DEFINE_enum, flag_values=FLAGS)

BACKEND = _enum("backend", None, ["tensorflow", "jax"],
                "Keras backend; wins over $KERAS_BACKEND (default: it, else tensorflow).")
MODEL = _string(
    "model", "deeplabv3plus_mobilenetv2",
    "An architecture to train from scratch (deeplab_keras.models.list_architectures()), a "
    "registry name (deeplab_keras.list_models(), e.g. deeplabv3plus_resnet50w40_camvid) or a "
    "saved .keras model. export: required, a registry name or a .keras file.")
DATASET = _string("dataset", "camvid", "Dataset layout: one of "
                  + ", ".join(layouts.list_layouts())
                  + ". 'folder' is your own data: images/[split/]*.jpg|png|... and "
                  "masks/[split/]<same name>.png (class ids 0..N-1, --ignore_label for void).")
DATA_DIR = _string("data_dir", None, "Root folder of the dataset.")
SPLIT = _string("split", None, "Split to train on (default: train; 'folder' data without "
                "split folders: none) or to evaluate (default: val).")
NUM_CLASSES = _integer("num_classes", None, "Number of classes (default: the layout's; "
                       "required for --dataset folder).", lower_bound=1)
CLASS_NAMES = _string("class_names", None, "Class names: 'road,car,tree' or a file (a JSON "
                      "list, or one name per line).")
IGNORE_LABEL = _integer("ignore_label", None, "Mask value to ignore (default 255).",
                        lower_bound=0, upper_bound=255)
IMAGES_DIR = _string("images_dir", "images", "--dataset folder: the images folder's name.")
MASKS_DIR = _string("masks_dir", "masks", "--dataset folder: the masks folder's name.")
MASK_SUFFIX = _string("mask_suffix", "", "--dataset folder: added to an image's stem to name "
                      "its mask (e.g. '_mask').")
BACKBONE_WEIGHTS = _enum("backbone_weights", None, ["imagenet"],
                         "train: start the backbone from keras.applications ImageNet weights "
                         "(architecture names only).")
OUTPUT_DIR = _string("output_dir", "runs/deeplab", "Checkpoints, logs, pictures, metrics.")
CROP = _string("crop_size", "513,513", "Training crop, 'height,width'.")
SCALE_RANGE = _string("scale_range", "0.5,2.0", "Random scale range 'min,max'.")
BATCH = _integer("batch_size", 8, "Global batch size.", lower_bound=1)
STEPS = _integer("steps", 30000, "Training steps.", lower_bound=1)
LR = _float("learning_rate", 0.007, "Base learning rate (poly decay, power 0.9).",
            lower_bound=0.0)
OPTIMIZER = _enum("optimizer", "sgd", ["sgd", "adamw"],
                  "Optimizer: momentum SGD (the papers) or AdamW.")
MOMENTUM = _float("momentum", 0.9, "SGD momentum.", lower_bound=0.0)
WEIGHT_DECAY = _float("weight_decay", 1e-4, "Weight decay.", lower_bound=0.0)
WARMUP = _integer("warmup_steps", 0, "Linear learning-rate warm-up steps.", lower_bound=0)
HEAD_LR = _float("head_lr_multiplier", 1.0, "Learning-rate multiplier of the head over the "
                 "backbone (the paper uses 10 when the backbone is pretrained).", lower_bound=0.0)
CLASS_WEIGHTS = _enum("class_weights", "none", ["none", "median_frequency"],
                      "Loss weights per class, from the training masks.")
FREEZE_BN = _bool("freeze_bn", False, "Freeze batch-norm statistics.")
MIXED = _enum("mixed_precision", "off", ["off", "mixed_float16", "mixed_bfloat16"],
              "Keras dtype policy (logits stay float32). train: the policy the model is "
              "built and trained under; evaluate / predict: the loaded model is converted to it "
              "(mixed_bfloat16: bfloat16 arithmetic, fast on CPUs with AMX or AVX-512 BF16).")
STRATEGY = _string("strategy", "off", "off | one_device | mirrored | multi_worker_mirrored | "
                   "tpu | data_parallel (JAX).")
INPUT = _enum("input", None, ["tfdata", "pydataset"],
              "Input pipeline (default: tfdata with TensorFlow, else pydataset).")
CKPT_EVERY = _integer("checkpoint_every", 200, "Steps between checkpoints.", lower_bound=1)
EVAL_EVERY = _integer("eval_every", 1, "Validate every N checkpoints (0: never).",
                      lower_bound=0)
SEED = _integer("seed", 0, "Seed of weights, data order and augmentation.")
SCALES = _string("scales", "1.0", "Evaluation/prediction scales, e.g. '0.5,0.75,1.0,1.25'.")
FLIP = _bool("flip", False, "Add horizontally flipped inputs at evaluation.")
SLIDING = _string("sliding_window", None, "Tile size 'h,w' for sliding-window evaluation of "
                  "large images.")
IMAGES = _string("images", None, "predict: a glob of images.")
CRF = _string("crf", None, "predict: refine the masks with the dense CRF; export: add a "
              "'serve_crf' signature (tf_saved_model only). 'model' (the parameters released "
              "with a registry model's weights, else the DenseCRF defaults), a DenseCRF preset "
              "name, or five numbers 'w1,theta_alpha,theta_beta,w2,theta_gamma'.")
WITH_CRF = _bool("with_crf", False, "export: the same as --crf model.")
FORMAT = _enum("format", "tf_saved_model", ["tf_saved_model", "saved_model", "litert", "tflite",
                                            "onnx"],
               "export: tf_saved_model (any batch and size; alias saved_model), litert (batch "
               "1 at --input_size; alias tflite) or onnx (any batch and size).")
OUTPUT = _string("output", None, "export: the SavedModel folder, .tflite or .onnx file to "
                 "write (default: <model name>[_<quantize>] with the format's extension, in "
                 "the current folder).")
QUANTIZE = _enum("quantize", "none", ["none", "float16", "dynamic_int8", "int8"],
                 "export --format litert: float16 or dynamic-range int8 weights, or full int8 "
                 "(weights and activations; needs --calibration_data).")
CALIBRATION = _string("calibration_data", None, "export --quantize int8: a folder of "
                      "representative images (up to 100 are used), not the ones you evaluate on.")
INPUT_SIZE = _string("input_size", None, "export: fixed input 'height,width' (required for "
                     "litert; other formats default to any size).")
VERIFY = _bool("verify", True, "export: run the export on the bundled example images and "
               "compare it with the Keras model.")
MAX_IMAGES = _integer("max_images", None, "evaluate: only the first N images (reported as "
                      "such).", lower_bound=1)

_COMMON = ("backend", "model", "output_dir")
_DATA = ("dataset", "data_dir", "num_classes", "class_names", "ignore_label", "images_dir",
         "masks_dir", "mask_suffix")
COMMAND_FLAGS = {
    "train": _COMMON + _DATA + (
        "split", "backbone_weights", "crop_size", "scale_range", "batch_size", "steps",
        "learning_rate", "optimizer", "momentum", "weight_decay", "warmup_steps",
        "head_lr_multiplier", "class_weights", "freeze_bn", "mixed_precision", "strategy",
        "input", "checkpoint_every", "eval_every", "seed", "scales"),
    "evaluate": _COMMON + _DATA + ("split", "scales", "flip", "sliding_window", "max_images",
                                   "mixed_precision"),
    "predict": _COMMON + ("images", "crf", "scales", "flip", "num_classes", "class_names",
                          "mixed_precision"),
    "export": ("backend", "model", "format", "output", "input_size", "quantize",
               "calibration_data", "crf", "with_crf", "verify"),
}


def help_text(command=None):
    """The flags of one command (all of them without a command), one paragraph each."""
    names = COMMAND_FLAGS.get(command) or sorted(FLAGS)
    lines = []
    for name in names:
        flag = FLAGS[name]
        default = "" if flag.default is None else f" (default: {flag.default_as_str})"
        lines.append(f"  --{name}: {flag.help}{default}")
    return "\n".join(lines)


def _parsed(text, cast):
    """Comma-separated values cast with `cast`, or () when one does not parse."""
    try:
        return tuple(cast(v) for v in text.split(","))
    except ValueError:
        return ()


def pair(text, name, cast=int):
    """`(a, b)` from 'a,b'; UsageError naming the flag otherwise."""
    values = _parsed(text, cast)
    if len(values) != 2 or min(values) <= 0:
        raise app.UsageError(f"--{name} must be two positive comma-separated numbers; "
                             f"received {text!r}.")
    return values


def numbers(text, name):
    """Positive floats from 'a,b,c'; UsageError naming the flag otherwise."""
    values = _parsed(text, float)
    if not values or min(values) <= 0:
        raise app.UsageError(f"--{name} must be positive comma-separated numbers; received "
                             f"{text!r}.")
    return values


def scale_range():
    low, high = pair(SCALE_RANGE.value, "scale_range", float)
    if low > high:
        raise app.UsageError(f"--scale_range must be 'min,max' with min <= max; received "
                             f"{SCALE_RANGE.value!r}.")
    return low, high


def crf():
    """--crf / --with_crf as `segment(crf=...)` / `export(crf=...)` take it, or None."""
    text = CRF.value
    if WITH_CRF.value:
        if text not in (None, "model"):
            raise app.UsageError(f"--with_crf means --crf model; received --crf {text!r} too.")
        return True
    if not text:
        return None
    if text == "model":
        return True
    if "," in text:
        values = _parsed(text, float)
        if len(values) != 5:
            raise app.UsageError("--crf as numbers must be five: 'w1,theta_alpha,theta_beta,"
                                 f"w2,theta_gamma'; received {text!r}.")
        return values
    return text


def class_names():
    """The names given by --class_names (a list, or a JSON / one-per-line file), or None."""
    text = CLASS_NAMES.value
    if not text:
        return None
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            content = f.read()
        try:
            names = json.loads(content)
        except ValueError:
            names = [line.strip() for line in content.splitlines() if line.strip()]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise app.UsageError(f"--class_names file {text}: expected a JSON list of strings "
                                 "or one name per line.")
    else:
        names = [n.strip() for n in text.split(",")]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise app.UsageError(f"--class_names: need distinct, non-empty names; received {names}.")
    return names


__all__ = ["COMMANDS", "COMMAND_FLAGS", "FLAGS", "class_names", "crf", "help_text", "numbers",
           "pair", "scale_range"]
