"""What travels with every export besides the graph: class names, palette and how it was made."""

import numpy as np

from deeplab_keras.version import __version__


def export_metadata(model, request):
    """A JSON-ready dict: class names, palette, input size and export settings."""
    from deeplab_keras.inference import class_names_of
    from deeplab_keras.inference import palette_of

    names = list(class_names_of(model))
    palette = np.asarray(palette_of(model, len(names)))[: len(names)].astype(int).tolist()
    return {
        "model": model.name,
        "class_names": names,
        "palette": palette,
        "input": "uint8 RGB images [batch, height, width, 3]",
        "outputs": {"labels": "int32 [batch, height, width] class ids",
                    "probabilities": "float32 [batch, height, width, classes] softmax"},
        "input_size": list(request.input_size) if request.input_size else None,
        "format": request.format,
        "quantize": request.quantize,
        "crf": request.crf is not None,
        "exported_by": f"deeplab-keras {__version__}",
    }


__all__ = ["export_metadata"]
