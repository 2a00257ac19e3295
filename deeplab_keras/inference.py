"""Inference: `segment` turns images into label maps, colour masks and overlays.

Example:

```python
import deeplab_keras as dk
model = dk.load_model("deeplabv3plus_resnet50w40_camvid")
result = dk.segment(model, "street.jpg", crf=True)  # a list in gives a list out
result.labels, result.color_mask, result.overlay
```
"""

import dataclasses
import os

import numpy as np

from deeplab_keras.crf import params as crf_params
from deeplab_keras.data import classes
from deeplab_keras.data.rgb import as_rgb_array
from deeplab_keras.data.rgb import is_pil_image


@dataclasses.dataclass
class Segmentation:
    """One segmented image.

    Attributes:
        labels: int32 `[H, W]` class ids at the image's original size.
        color_mask: uint8 `[H, W, 3]` labels drawn with the palette.
        overlay: uint8 `[H, W, 3]` image blended with the colour mask.
        probabilities: float32 `[H, W, C]` softmax (after the CRF when one is used).
        source: the path the image came from, or None for arrays.
    """

    labels: np.ndarray
    color_mask: np.ndarray
    overlay: np.ndarray
    probabilities: np.ndarray
    source: str = None

    def class_fractions(self, class_names=None):
        """{class: fraction of pixels}, largest first."""
        ids, counts = np.unique(self.labels, return_counts=True)
        total = float(self.labels.size)
        names = [class_names[i] if class_names is not None and i < len(class_names) else int(i)
                 for i in ids]
        pairs = sorted(zip(names, (float(c) / total for c in counts)), key=lambda kv: -kv[1])
        return dict(pairs)


def _is_single(images):
    """One image (a path, a PIL image or a 3-D array) rather than a list or a batch."""
    if isinstance(images, (str, os.PathLike)) or is_pil_image(images):
        return True
    return (isinstance(images, np.ndarray) or hasattr(images, "shape")) and len(
        np.shape(images)) in (2, 3)


def _as_image_list(images):
    """Normalises the accepted inputs to a list of (float32 [H, W, 3] in 0..255, source)."""
    if _is_single(images):
        images = [images]
    elif isinstance(images, np.ndarray) or hasattr(images, "shape"):
        array = np.asarray(images)
        if array.ndim != 4:
            raise ValueError("segment: an image array must be [H, W, 3] or [B, H, W, 3]; "
                             f"received shape {array.shape}.")
        images = list(array)
    out = []
    for i, item in enumerate(images):
        source = os.fspath(item) if isinstance(item, (str, os.PathLike)) else None
        out.append((as_rgb_array(item, f"segment: image {i}" if source is None else source),
                    source))
    if not out:
        raise ValueError("segment: no images given.")
    return out


def resolve_crf(crf, record=None):
    """A `DenseCRF` layer from what `segment(crf=...)` accepts (None: no CRF).

    True takes the parameters released with the model's weights (`record.crf`,
    e.g. tuned on the validation set) and the `DenseCRF` defaults otherwise; a
    string is a preset name; five numbers are (w1, theta_alpha, theta_beta, w2,
    theta_gamma).
    """
    if crf is None or crf is False:
        return None
    from deeplab_keras.layers import DenseCRF

    if isinstance(crf, DenseCRF):
        return crf
    if crf is True:
        if record is None or not record.crf:
            return DenseCRF()
        crf = record.crf
    if isinstance(crf, (str, tuple, list)):
        return DenseCRF.from_params(crf)
    raise TypeError("segment: `crf` must be None, True, a preset name "
                    f"({sorted(crf_params.PRESETS)}), five numbers (w1, theta_alpha, "
                    f"theta_beta, w2, theta_gamma) or a DenseCRF layer; received {crf!r}.")


def segment(model, images, crf=None, palette=None, alpha=0.5, scales=(1.0,), flip=False):
    """Segments images of any size with `model`.

    One image in (a path, a PIL image or an `[H, W, 3]` array) gives one `Segmentation`; a
    list (or a `[B, H, W, 3]` batch) gives a list.

    Args:
        model: a DeepLab model (RGB float32 0..255 in, logits at input size out), e.g. from
            `deeplab_keras.models` or `keras.saving.load_model`.
        images: a path, a PIL image, an array `[H, W, 3]` / `[B, H, W, 3]`, or a list of
            them (of different sizes). Arrays are RGB: uint8, uint16 (16-bit, scaled by
            1/256) or float/int values in 0..255; see `as_rgb_array` for the rule.
        crf: None, True (the CRF parameters of the model's weight record, else the
            `DenseCRF` defaults), a `DenseCRF` preset name, five numbers, or a `DenseCRF`
            layer; refines each image's logits with the fully connected CRF.
        palette: `[C, 3]` uint8 colours; default: the model's own (`model.palette`, saved
            in its `.keras` file), else its weight record's, else PASCAL VOC's colour map.
        alpha: weight of the mask in the overlay.
        scales, flip: multi-scale and flipped inference: softmax averaged over the passes
            (see `deeplab_keras.evaluation.predict_probabilities`); its log feeds the CRF.

    Example:

    ```python
    import deeplab_keras as dk
    model = dk.models.DeepLabV3Plus(backbone="mobilenetv2", num_classes=11)
    result = dk.segment(model, "street.jpg", crf="deeplab_resnet101_voc")
    result.labels.shape, result.class_fractions(model.class_names)
    ```
    """
    import keras

    crf_layer = resolve_crf(crf, getattr(model, "weight_record", None))
    single = _is_single(images)
    results = []
    for image, source in _as_image_list(images):
        probabilities = None
        if tuple(scales) != (1.0,) or flip:
            from deeplab_keras.evaluation import predict_probabilities

            # Fused in probability space; their log is a valid logit for the argmax and CRF.
            probabilities = predict_probabilities(model, image, scales=scales, flip=flip)
            logits = np.log(np.clip(probabilities, 1e-12, None))
        else:
            logits = np.asarray(model.predict_on_batch(image[None]))[0]
        if logits.shape[:2] != image.shape[:2]:
            raise ValueError(f"segment: the model returned logits of size {logits.shape[:2]} "
                             f"for an image of size {image.shape[:2]}; build it with "
                             "upsample_logits=True.")
        if crf_layer is not None:
            logits = np.asarray(crf_layer([logits[None].astype(np.float32), image[None]]))[0]
            probabilities = None
        if probabilities is None:
            probabilities = np.asarray(keras.ops.softmax(logits.astype(np.float32), axis=-1))
        labels = np.argmax(logits, axis=-1).astype(np.int32)
        colors = palette_of(model, logits.shape[-1], palette)
        color_mask = classes.colorize(labels, colors)
        results.append(Segmentation(
            labels=labels, color_mask=color_mask,
            overlay=overlay(np.clip(image, 0, 255).astype(np.uint8), color_mask, alpha),
            probabilities=probabilities, source=source))
    return results[0] if single else results


def palette_of(model, num_classes=None, palette=None):
    """Colours for `model`'s classes: `palette` if given, else the model's own
    (`model.palette`), else its weight record's, else PASCAL VOC's colour map."""
    record = getattr(model, "weight_record", None)
    if num_classes is None:
        num_classes = len(class_names_of(model))
    if palette is None:
        palette = getattr(model, "palette", None)
    if palette is None and record is not None and record.num_classes == num_classes:
        palette = record.palette_array()
    if palette is None:
        return classes.voc_palette(max(num_classes, 256))
    palette = np.asarray(palette, np.uint8)
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) < num_classes:
        raise ValueError(f"segment: `palette` must be [>= {num_classes}, 3] uint8; received "
                         f"shape {palette.shape}.")
    return palette


def class_names_of(model):
    """The model's class names: its own (`model.class_names`, saved in its `.keras` file),
    else its weight record's, else `class_0, class_1, ...` from its output size."""
    names = getattr(model, "class_names", None)
    if names:
        return tuple(names)
    record = getattr(model, "weight_record", None)
    if record is not None and record.class_names:
        return tuple(record.class_names)
    return tuple(f"class_{i}" for i in range(int(model.output_shape[-1])))


def overlay(image, color_mask, alpha=0.5):
    """Blends an RGB uint8 image with a colour mask (`alpha` = mask weight).

    Example:

    ```python
    blended = overlay(image, deeplab_keras.data.classes.colorize(labels), alpha=0.5)
    ```
    """
    image = np.asarray(image, np.float32)
    if image.shape != np.shape(color_mask):
        raise ValueError(f"image {image.shape} and mask {np.shape(color_mask)} differ in shape.")
    blended = (1 - alpha) * image + alpha * np.asarray(color_mask, np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def load_rgb(path):
    """An image file as uint8 RGB `[H, W, 3]`, as `deeplab_keras.data.load_image` reads it
    (EXIF rotation, 16-bit scaled, palette/CMYK converted); ValueError naming the file when it
    cannot be read."""
    from deeplab_keras.data import decode

    return decode.load_image(path)


__all__ = ["Segmentation", "as_rgb_array", "class_names_of", "load_rgb", "overlay",
           "palette_of", "resolve_crf", "segment"]
