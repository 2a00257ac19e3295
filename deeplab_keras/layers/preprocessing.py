"""In-model input normalisation, so every model takes RGB 0..255 images."""

import keras
from keras import ops

CHANNEL_ORDERS = ("rgb", "bgr")

# Normalisations that published weights expect, in 0..255 units and the network's channel order
# (where each comes from: the weight records in `deeplab_keras.weights.records`).
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # torchvision: (0.485, 0.456, 0.406) * 255, RGB
IMAGENET_STD = (58.395, 57.12, 57.375)  # torchvision: (0.229, 0.224, 0.225) * 255
CAFFE_DEEPLAB_BGR_MEAN = (104.008, 116.669, 122.675)  # DeepLab v2 prototxt mean_value, BGR
KERAS_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # keras.applications mode="caffe", BGR
UNIT_RANGE_MEAN = UNIT_RANGE_STD = (127.5, 127.5, 127.5)  # TF: x / 127.5 - 1, RGB
NO_STD = (1.0, 1.0, 1.0)


@keras.saving.register_keras_serializable(package="deeplab_keras")
class ImageNormalization(keras.layers.Layer):
    """Maps RGB images in 0..255 to what a set of weights was trained on.

    `y = (x[..., order] - mean) / std`, with `mean` and `std` given in the
    *output* channel order and in 0..255 units.

    Args:
        mean: 3 floats, per-channel mean (0..255 scale). Default zeros.
        std: 3 floats, per-channel std (0..255 scale). Default ones.
        channel_order: "rgb" (default) or "bgr" (Caffe weights).

    Example:

    ```python
    # torchvision / ImageNet statistics
    norm = deeplab_keras.layers.ImageNormalization(
        mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
    # Caffe DeepLab v2: BGR minus the mean
    norm = deeplab_keras.layers.ImageNormalization(
        mean=(104.008, 116.669, 122.675), channel_order="bgr")
    ```
    """

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channel_order="rgb", **kwargs):
        super().__init__(**kwargs)
        mean = tuple(float(m) for m in mean)
        std = tuple(float(s) for s in std)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"`mean` and `std` need 3 values; received {mean}, {std}.")
        if min(std) <= 0:
            raise ValueError(f"`std` values must be > 0; received {std}.")
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"`channel_order` must be one of {CHANNEL_ORDERS}; "
                             f"received {channel_order!r}.")
        self.mean, self.std, self.channel_order = mean, std, channel_order

    def build(self, input_shape):
        if input_shape[-1] not in (None, 3):
            raise ValueError(
                f"{self.name}: images must have 3 (RGB) channels; received shape "
                f"{tuple(input_shape)}. "
                "Convert grayscale or RGBA images to RGB first."
            )

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        if self.channel_order == "bgr":
            x = ops.flip(x, axis=-1)
        mean = ops.convert_to_tensor(self.mean, dtype=x.dtype)
        inv_std = ops.convert_to_tensor([1.0 / s for s in self.std], dtype=x.dtype)
        return (x - mean) * inv_std

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean, "std": self.std, "channel_order": self.channel_order})
        return config
