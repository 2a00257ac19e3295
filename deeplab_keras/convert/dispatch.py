"""Which converter reads which weight format: one table, looked up by the weight records.

Each converter fills a built model from a local file in another library's format and returns
a `ConversionReport`. Unpacking archives (a Caffe release zip, a TF1 tarball) is the weights
package's job (`deeplab_keras.weights.original_files`); the converters see plain files.

Example:

```python
from deeplab_keras.convert import dispatch

report = dispatch.convert_file("torchvision", model, "deeplabv3_resnet101_coco-586e9e4e.pth")
```
"""

from deeplab_keras.convert import caffe
from deeplab_keras.convert import tf_slim
from deeplab_keras.convert import torch_pth

# name: (what it reads, module, function `f(model, path) -> ConversionReport`)
CONVERTERS = {
    "caffe": ("a DeepLab v1/v2 `.caffemodel`", caffe, "from_caffemodel"),
    "tf_slim": ("a TF1 checkpoint prefix of TF research/deeplab (needs TensorFlow)", tf_slim,
                "from_tf_checkpoint"),
    "torchvision": ("a torchvision `.pth` state dict (read without torch)", torch_pth,
                    "from_torchvision_file"),
}


def convert_file(converter, model, path):
    """Runs the named converter on the local file (or checkpoint prefix) `path`."""
    if converter not in CONVERTERS:
        raise ValueError(f"Unknown converter {converter!r}; available: {sorted(CONVERTERS)}.")
    _, module, function = CONVERTERS[converter]
    return getattr(module, function)(model, path)


__all__ = ["CONVERTERS", "convert_file"]
