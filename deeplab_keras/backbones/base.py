"""Shared base for backbones: a functional `keras.Model` with named features."""

import keras


class Backbone(keras.Model):
    """A feature extractor whose output is a dict of named feature maps.

    Subclasses build a functional graph from `keras.Input((None, None, 3))`
    and pass a dict of outputs to `Backbone.__init__`. Every backbone has:

    - `output_stride`: the stride of its deepest feature ("high_level").
    - `feature_names`: the keys of its output dict, always including
      "high_level" (input to the ASPP) and "low_level" (stride 4, input to the
      v3+ decoder).
    - `feature_strides`: stride of each feature.

    Inputs are already-normalised images (models normalise); backbones do not
    normalise themselves.
    """

    def __init__(self, inputs, features, output_stride, feature_strides, **kwargs):
        missing = {"high_level", "low_level"} - set(features)
        if missing:
            raise ValueError(f"Backbone is missing required features {sorted(missing)}.")
        super().__init__(inputs=inputs, outputs=features, **kwargs)
        self.output_stride = output_stride
        self.feature_strides = dict(feature_strides)

    @property
    def feature_names(self):
        return sorted(self.feature_strides)
