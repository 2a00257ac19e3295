"""Atrous spatial pyramid pooling, DeepLab v2 design (class scores summed)."""

import keras

from deeplab_keras.layers.atrous_conv import AtrousConv2D

ASPP_V2_RATES = {"S": (2, 4, 8, 12), "L": (6, 12, 18, 24), "LargeFOV": (12,)}
BRANCH_TYPES = ("vgg", "resnet")


def aspp_v2_rates(aspp):
    """Rates of a named DeepLab v2 head: "S", "L" or "LargeFOV"."""
    if aspp not in ASPP_V2_RATES:
        raise ValueError(f"`aspp` must be one of {sorted(ASPP_V2_RATES)}; received {aspp!r}.")
    return ASPP_V2_RATES[aspp]


@keras.saving.register_keras_serializable(package="deeplab_keras")
class ASPPV2(keras.layers.Layer):
    """ASPP of DeepLab v2 (Chen et al., TPAMI 2018, Sec. 3.3, Fig. 4).

    Parallel branches, one per atrous rate, each producing class scores; the
    branch scores are summed. A VGG-16 branch is fc6 (3x3 atrous, 1024) ->
    ReLU -> dropout -> fc7 (1x1, 1024) -> ReLU -> dropout -> fc8 (1x1,
    classes). A ResNet-101 branch is one 3x3 atrous conv straight to the
    classes. A single branch at rate 12 is DeepLab-LargeFOV.

    Args:
        num_classes: int. Output classes.
        rates: atrous rates, ASPP-S (2, 4, 8, 12), ASPP-L (6, 12, 18, 24) or
            LargeFOV (12,).
        branch: "vgg" or "resnet".
        hidden_filters: fc6/fc7 width for "vgg" branches (1024).
        dropout: dropout after fc6 and fc7 for "vgg" branches (0.5).

    Example:

    ```python
    head = deeplab_keras.layers.ASPPV2(num_classes=21, rates=(6, 12, 18, 24), branch="resnet")
    head(keras.random.normal((1, 41, 41, 2048))).shape  # (1, 41, 41, 21)
    ```
    """

    def __init__(self, num_classes, rates=(6, 12, 18, 24), branch="resnet", hidden_filters=1024,
                 dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        if branch not in BRANCH_TYPES:
            raise ValueError(f"`branch` must be one of {BRANCH_TYPES}; received {branch!r}.")
        self.num_classes, self.rates = int(num_classes), tuple(int(r) for r in rates)
        if self.num_classes < 1 or not self.rates or min(self.rates) < 1:
            raise ValueError(f"Need num_classes >= 1 and rates >= 1; received "
                             f"{num_classes}, {self.rates}.")
        self.branch, self.hidden_filters, self.dropout = branch, int(hidden_filters), float(dropout)
        self.branches = []
        for i, rate in enumerate(self.rates):
            if branch == "vgg":
                layers = [
                    AtrousConv2D(self.hidden_filters, 3, rate=rate, name=f"fc6_{i}"),
                    keras.layers.ReLU(),
                    keras.layers.Dropout(self.dropout),
                    AtrousConv2D(self.hidden_filters, 1, name=f"fc7_{i}"),
                    keras.layers.ReLU(),
                    keras.layers.Dropout(self.dropout),
                    AtrousConv2D(self.num_classes, 1, kernel_initializer=_classifier_init(),
                                 name=f"fc8_{i}"),
                ]
            else:
                layers = [AtrousConv2D(self.num_classes, 3, rate=rate,
                                       kernel_initializer=_classifier_init(), name=f"fc1_c{i}")]
            self.branches.append(layers)

    def build(self, input_shape):
        for layers in self.branches:
            shape = tuple(input_shape)
            for layer in layers:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, x, training=None):
        total = None
        for layers in self.branches:
            y = x
            for layer in layers:
                if isinstance(layer, keras.layers.Dropout):
                    y = layer(y, training=training)
                else:
                    y = layer(y)
            total = y if total is None else total + y
        return total

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "rates": self.rates,
                       "branch": self.branch, "hidden_filters": self.hidden_filters,
                       "dropout": self.dropout})
        return config


def _classifier_init():
    # DeepLab v2 initialises the class-score layers with N(0, 0.01).
    return keras.initializers.RandomNormal(stddev=0.01)
