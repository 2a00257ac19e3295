"""Shared machinery for weight converters: checked assignment and a report."""

import dataclasses

import numpy as np


class ConversionError(ValueError):
    """A source checkpoint does not fit the target model."""


@dataclasses.dataclass
class ConversionReport:
    """What a converter did: every source tensor is mapped or skipped, once.

    Attributes:
        mapped: `{source_name: target_variable_path}`.
        skipped: `{source_name: reason}` for tensors with no counterpart
            (torchvision's aux head, BN batch counters, ...).
    """

    mapped: dict = dataclasses.field(default_factory=dict)
    skipped: dict = dataclasses.field(default_factory=dict)

    def summary(self):
        return f"{len(self.mapped)} tensors mapped, {len(self.skipped)} skipped"


def assign(variable, value, source_name, report):
    """Assigns `value` to `variable` after checking the shape; records it."""
    if source_name in report.mapped:
        raise ConversionError(f"Source tensor {source_name!r} was mapped twice.")
    value = np.asarray(value)
    if tuple(variable.shape) != value.shape:
        raise ConversionError(
            f"Shape mismatch for {source_name!r} -> {variable.path}: source {value.shape}, "
            f"target {tuple(variable.shape)}. Was the model built with the same architecture "
            "(backbone variant, num_classes, head)?"
        )
    variable.assign(value.astype(variable.dtype))
    report.mapped[source_name] = variable.path


def check_complete(model, report, what):
    """Raises unless every variable of `model` received a value."""
    filled = set(report.mapped.values())
    missing = [v.path for v in model.weights if v.path not in filled]
    if missing:
        raise ConversionError(
            f"{what}: {len(missing)} target weights got no value, e.g. {missing[:5]}. "
            "The model and the checkpoint differ in architecture."
        )


def backbone_of(model):
    """The backbone of a DeepLab model, or the model itself if it is one."""
    from deeplab_keras.backbones.base import Backbone

    if isinstance(model, Backbone):
        return model
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise ConversionError(f"{type(model).__name__} has no `backbone` to convert into.")
    return backbone


def bn_variables(bn_layer):
    """(gamma, beta, moving_mean, moving_variance) of a BatchNormalization."""
    if not (bn_layer.center and bn_layer.scale):
        raise ConversionError(f"{bn_layer.name}: converters expect BN with center and scale.")
    return bn_layer.gamma, bn_layer.beta, bn_layer.moving_mean, bn_layer.moving_variance
