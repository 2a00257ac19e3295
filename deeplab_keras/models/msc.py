"""Multi-scale inputs with max fusion (DeepLab v2, Sec. 3.3 / 4.1)."""

import keras

from deeplab_keras.layers.resize import ResizeByScale
from deeplab_keras.layers.resize import ResizeLike
from deeplab_keras.models import base


def scale_key(scale):
    return f"scale_{float(scale):g}"


@keras.saving.register_keras_serializable(package="deeplab_keras")
class MSC(base.WrapperModel):
    """Runs a segmentation model on rescaled copies of the input and fuses them.

    Each scale's logits are resized to the input resolution and fused by an
    element-wise maximum (the paper's "MSC"). With
    `output_all_scales=True` the model returns a dict
    `{"fused": ..., "scale_1": ..., "scale_0.75": ..., ...}` so training can
    use the paper's four losses (one per scale plus the fused one).

    Args:
        model: a segmentation model taking RGB 0..255 images of any size and
            returning logits at input resolution (any `deeplab_keras` model).
        scales: input scales, default (1.0, 0.75, 0.5).
        output_all_scales: also return the per-scale logits.
        align_corners: TF1 resize semantics (also Caffe's `Interp`).
        size_rule: how each scale's input size is computed: "ceil" (`ceil(n * scale)`) or
            "caffe_interp" (the DeepLab v2 Caffe release's `Interp` layer; see
            `layers.ResizeByScale`).

    Example:

    ```python
    base_model = deeplab_keras.models.DeepLabV2(backbone="resnet101", num_classes=21)
    msc = deeplab_keras.models.MSC(base_model, scales=(1.0, 0.75, 0.5))
    fused = msc.predict(images)
    ```
    """

    def __init__(self, model, scales=(1.0, 0.75, 0.5), output_all_scales=False,
                 align_corners=False, size_rule="ceil", **kwargs):
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        scales = tuple(float(s) for s in scales)
        if not scales or min(scales) <= 0:
            raise ValueError(f"MSC: `scales` must be positive floats; received {scales}.")
        if len(set(scales)) != len(scales):
            raise ValueError(f"MSC: `scales` must be distinct; received {scales}.")
        images = base.image_input()
        per_scale = {}
        for scale in scales:
            key = scale_key(scale)
            x = ResizeByScale(scale, align_corners=align_corners, size_rule=size_rule,
                              name=f"resize_{key}")(images)
            logits = model(x)
            if scale != 1.0:
                logits = ResizeLike(align_corners=align_corners, name=f"upsample_{key}")(
                    [logits, images])
            per_scale[key] = logits
        fused = per_scale[scale_key(scales[0])] if len(scales) == 1 else keras.layers.Maximum(
            name="fuse_max")(list(per_scale.values()))
        fused = keras.layers.Activation("linear", dtype="float32", name="fused")(fused)
        outputs = {"fused": fused, **per_scale} if output_all_scales else fused
        config = dict(scales=scales, output_all_scales=output_all_scales,
                      align_corners=align_corners, size_rule=size_rule)
        self._init_wrapper(images, outputs, config, model, **kwargs)
        self.scales = scales


__all__ = ["MSC", "scale_key"]
