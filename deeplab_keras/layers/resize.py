"""Resizing layers: to another tensor's size, or by a scale factor."""

import keras

from deeplab_keras.ops.resize import SIZE_RULES
from deeplab_keras.ops.resize import resize_bilinear
from deeplab_keras.ops.resize import scaled_size
from deeplab_keras.ops.resize import spatial_size


@keras.saving.register_keras_serializable(package="deeplab_keras")
class ResizeLike(keras.layers.Layer):
    """Bilinearly resizes `x` to the spatial size of `reference`.

    Called as `layer([x, reference])`; used to bring logits back to the input
    resolution for inputs of any size.

    Args:
        align_corners: TF1 `align_corners=True` semantics if True.

    Example:

    ```python
    up = deeplab_keras.layers.ResizeLike()
    logits = up([keras.ops.zeros((1, 33, 33, 21)), keras.ops.zeros((1, 513, 513, 3))])
    ```
    """

    def __init__(self, align_corners=False, **kwargs):
        super().__init__(**kwargs)
        self.align_corners = bool(align_corners)

    def call(self, inputs):
        x, reference = inputs
        return resize_bilinear(x, spatial_size(reference), self.align_corners)

    def compute_output_shape(self, input_shape):
        x_shape, ref_shape = input_shape
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["align_corners"] = self.align_corners
        return config


@keras.saving.register_keras_serializable(package="deeplab_keras")
class ResizeByScale(keras.layers.Layer):
    """Bilinearly resizes NHWC images by a scale factor (MSC inputs).

    The output size is `ceil(size * scale)` (TF's multi-scale evaluation), or with
    `size_rule="caffe_interp"` the DeepLab v2 Caffe `Interp` layer's
    `(size - 1) // shrink * zoom + 1` (the two agree for sizes 8k + 1); see
    `deeplab_keras.ops.resize.scaled_size`.

    Args:
        scale: float > 0.
        align_corners: TF1 semantics if True (also what Caffe's `Interp` computes).
        size_rule: "ceil" or "caffe_interp".

    Example:

    ```python
    half = deeplab_keras.layers.ResizeByScale(0.5)
    half(keras.ops.zeros((1, 321, 321, 3))).shape  # (1, 161, 161, 3)
    ```
    """

    def __init__(self, scale, align_corners=False, size_rule="ceil", **kwargs):
        super().__init__(**kwargs)
        if float(scale) <= 0:
            raise ValueError(f"`scale` must be > 0; received {scale}.")
        if size_rule not in SIZE_RULES:
            raise ValueError(f"`size_rule` must be one of {SIZE_RULES}; received {size_rule!r}.")
        self.scale = float(scale)
        self.align_corners = bool(align_corners)
        self.size_rule = size_rule

    def call(self, images):
        if self.scale == 1.0:
            return images
        h, w = spatial_size(images)
        size = tuple(scaled_size(n, self.scale, self.size_rule) for n in (h, w))
        return resize_bilinear(images, size, self.align_corners)

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        if self.scale != 1.0:
            h = None if h is None else scaled_size(h, self.scale, self.size_rule)
            w = None if w is None else scaled_size(w, self.scale, self.size_rule)
        return (input_shape[0], h, w, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "align_corners": self.align_corners,
                       "size_rule": self.size_rule})
        return config
