"""Training: losses, the mIoU metric, learning-rate schedules, optimizers, checkpoints, `fit`."""

from deeplab_keras.train.losses import SegmentationCrossEntropy
from deeplab_keras.train.losses import msc_losses
from deeplab_keras.train.losses import msc_targets
from deeplab_keras.train.metrics import MeanIoU
from deeplab_keras.train.optimizers import AdamWWithMultipliers
from deeplab_keras.train.optimizers import SGDWithMultipliers
from deeplab_keras.train.optimizers import freeze_batch_norm
from deeplab_keras.train.optimizers import head_lr_multipliers
from deeplab_keras.train.optimizers import make_optimizer
from deeplab_keras.train.schedules import PolyDecay

__all__ = [
    "AdamWWithMultipliers", "MeanIoU", "PolyDecay", "SGDWithMultipliers",
    "SegmentationCrossEntropy", "freeze_batch_norm", "head_lr_multipliers", "make_optimizer",
    "msc_losses", "msc_targets",
]
