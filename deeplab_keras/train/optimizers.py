"""Optimizers for DeepLab training: head learning-rate multipliers, L2 weight
decay the Caffe / TF-slim way, frozen batch norm, and one `make_optimizer`.
"""

import keras
from keras import ops

OPTIMIZERS = ("sgd", "adamw")
WEIGHT_DECAY_MODES = ("l2", "decoupled")


def _matches(path, prefix):
    return path == prefix or path.startswith(prefix + "/")


def multiplier_for(path, lr_multipliers):
    """The factor of the longest prefix of `lr_multipliers` matching `path` (else 1)."""
    best, factor = -1, 1.0
    for prefix, value in (lr_multipliers or {}).items():
        if _matches(path, prefix) and len(prefix) > best:
            best, factor = len(prefix), float(value)
    return factor


class LRMultipliersMixin:
    """Per-variable learning-rate factors and L2 weight decay for a Keras optimizer.

    Mixed in before a Keras optimizer class; it scales the learning rate
    given to `update_step` for every variable whose `variable.path` equals, or
    lies under, a key of `lr_multipliers` (the longest matching key wins),
    and adds `l2_weight_decay * w` to the gradient of every variable with
    more than one dimension (conv and dense kernels; biases and batch-norm
    parameters are not decayed, as with TF-slim's `weights_regularizer`). The
    L2 term goes through momentum and the multiplier, as in Caffe.
    """

    def _init_multipliers(self, lr_multipliers, l2_weight_decay):
        lr_multipliers = {str(k): float(v) for k, v in dict(lr_multipliers or {}).items()}
        for key, value in lr_multipliers.items():
            if not value >= 0:
                raise ValueError(f"{type(self).__name__}: lr_multipliers[{key!r}] must be >= 0; "
                                 f"received {value}.")
        if not float(l2_weight_decay) >= 0:
            raise ValueError(f"{type(self).__name__}: l2_weight_decay must be >= 0; received "
                             f"{l2_weight_decay}.")
        self.lr_multipliers = lr_multipliers
        self.l2_weight_decay = float(l2_weight_decay)

    def build(self, variables):
        super().build(variables)
        self._lr_factors = tuple(multiplier_for(v.path, self.lr_multipliers) for v in variables)
        self._l2_decayed = tuple(len(v.shape) > 1 for v in variables)

    def learning_rate_multiplier(self, variable):
        """The factor applied to `variable` (a model variable)."""
        return multiplier_for(variable.path, self.lr_multipliers)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        if self.l2_weight_decay and self._l2_decayed[index]:
            gradient = ops.add(ops.cast(gradient, variable.dtype),
                               ops.multiply(ops.cast(variable, variable.dtype),
                                            ops.cast(self.l2_weight_decay, variable.dtype)))
        factor = self._lr_factors[index]
        if factor != 1.0:
            learning_rate = ops.multiply(ops.cast(learning_rate, variable.dtype),
                                         ops.cast(factor, variable.dtype))
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(lr_multipliers=dict(self.lr_multipliers),
                      l2_weight_decay=self.l2_weight_decay)
        return config


@keras.saving.register_keras_serializable(package="deeplab_keras")
class SGDWithMultipliers(LRMultipliersMixin, keras.optimizers.SGD):
    """SGD (momentum) with per-variable learning-rate factors and L2 decay.

    The DeepLab recipe trains the new head with a 10x larger learning rate
    than the pretrained backbone; `head_lr_multipliers(model, 10.0)` builds
    the mapping. Keras' own `weight_decay` argument (decoupled: `w -= lr *
    wd * w` at the base rate for every variable) stays available; the
    `l2_weight_decay` here is the papers' Caffe / TF-slim L2 on kernels.

    Args:
        learning_rate: float or schedule (e.g. `PolyDecay`).
        lr_multipliers: dict `variable-path prefix -> factor`; a variable
            whose `variable.path` equals a key or starts with `key + "/"`
            gets `learning_rate * factor` (longest key wins; others 1).
        l2_weight_decay: L2 coefficient added to kernel gradients (5e-4 in
            DeepLab v2, 4e-5 to 1e-4 in v3).
        **kwargs: `keras.optimizers.SGD` arguments (momentum, nesterov, ...).

    Example:

    ```python
    from deeplab_keras import train
    optimizer = train.SGDWithMultipliers(
        train.PolyDecay(2.5e-4, total_steps=20000), momentum=0.9,
        lr_multipliers=train.head_lr_multipliers(model, 10.0), l2_weight_decay=5e-4)
    ```
    """

    def __init__(self, learning_rate=0.01, lr_multipliers=None, l2_weight_decay=0.0,
                 name="sgd_with_multipliers", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._init_multipliers(lr_multipliers, l2_weight_decay)


@keras.saving.register_keras_serializable(package="deeplab_keras")
class AdamWWithMultipliers(LRMultipliersMixin, keras.optimizers.AdamW):
    """AdamW with per-variable learning-rate factors (see `SGDWithMultipliers`).

    Args:
        learning_rate: float or schedule.
        lr_multipliers: dict `variable-path prefix -> factor`.
        l2_weight_decay: L2 added to kernel gradients (usually 0 with AdamW,
            whose `weight_decay` is decoupled).
        **kwargs: `keras.optimizers.AdamW` arguments.

    Example:

    ```python
    optimizer = deeplab_keras.train.AdamWWithMultipliers(
        1e-4, weight_decay=1e-4, lr_multipliers={"classifier": 10.0})
    ```
    """

    def __init__(self, learning_rate=0.001, lr_multipliers=None, l2_weight_decay=0.0,
                 name="adamw_with_multipliers", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._init_multipliers(lr_multipliers, l2_weight_decay)


def find_backbone(model):
    """`model.backbone`, looking through wrappers such as MSC and CRFRefined."""
    seen = set()
    while model is not None and id(model) not in seen:
        seen.add(id(model))
        backbone = getattr(model, "backbone", None)
        if isinstance(backbone, keras.layers.Layer):
            return backbone
        model = getattr(model, "model", None)
    return None


def head_lr_multipliers(model, multiplier=10.0, bias_multiplier=None, backbone=None):
    """`lr_multipliers` giving the head `multiplier` x the backbone's learning rate.

    The head is every trainable variable of `model` that is not a variable of
    its backbone (`model.backbone`, found through MSC / CRFRefined wrappers,
    or the `backbone` argument). Returns compact path prefixes (the head's
    top-level layer names, e.g. `{"aspp": 10.0, "classifier": 10.0}`) when
    they are unambiguous, full variable paths otherwise, and checks that the
    mapping selects exactly the head.

    Args:
        model: a DeepLab model (or any model, with `backbone=`).
        multiplier: factor for the head (10 in DeepLab v2).
        bias_multiplier: optional separate factor for head biases (the
            Caffe release uses 20).
        backbone: the backbone layer, if `model` has no `backbone` attribute.

    Example:

    ```python
    multipliers = deeplab_keras.train.head_lr_multipliers(model, 10.0, bias_multiplier=20.0)
    ```
    """
    backbone = backbone if backbone is not None else find_backbone(model)
    if backbone is None:
        raise ValueError(f"head_lr_multipliers: {type(model).__name__} has no `backbone` "
                         "attribute; pass the backbone layer as `backbone=`.")
    backbone_ids = {id(v) for v in backbone.weights}
    head = [v for v in model.trainable_weights if id(v) not in backbone_ids]
    body = [v for v in model.weights if id(v) in backbone_ids]
    if not head:
        raise ValueError("head_lr_multipliers: every trainable variable is in the backbone; "
                         "there is no head to speed up.")
    head_paths = [v.path for v in head]
    body_paths = {v.path for v in body}
    clash = sorted(set(head_paths) & body_paths)
    if clash:
        raise ValueError(f"head_lr_multipliers: head and backbone variables share the paths "
                         f"{clash[:5]}; give the layers distinct names.")

    def is_bias(v):
        return v.name == "bias" and bias_multiplier is not None

    mapping = {}
    for v in head:
        top = v.path.split("/")[0]
        if any(_matches(p, top) for p in body_paths):
            mapping[v.path] = float(multiplier)
        else:
            mapping[top] = float(multiplier)
    for v in head:
        if is_bias(v):
            mapping[v.path] = float(bias_multiplier)
    for v in head:
        expected = float(bias_multiplier) if is_bias(v) else float(multiplier)
        if multiplier_for(v.path, mapping) != expected:
            mapping[v.path] = expected
    wrong = [v.path for v in body if multiplier_for(v.path, mapping) != 1.0]
    if wrong:
        raise ValueError(f"head_lr_multipliers: backbone variables {wrong[:5]} would get the "
                         "head's rate; give the layers distinct names.")
    return mapping


def batch_norm_layers(model):
    """Every BatchNormalization-type layer in `model`, nested models included."""
    layers = model._flatten_layers(include_self=True, recursive=True)
    return [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]


def freeze_batch_norm(model):
    """Freezes every batch-norm layer: fixed gamma/beta and moving statistics.

    Sets `trainable = False` on each `keras.layers.BatchNormalization`
    (including `deeplab_keras.layers.BatchNorm` and synchronized BN); Keras 3
    then runs such a layer in inference mode, even inside `fit`, so its
    moving mean and variance stay fixed. This is DeepLab v2's recipe and the
    right choice for small batches (BN statistics need about 16 images per
    replica). Call it before `compile`.

    Args:
        model: any Keras model or layer.

    Returns:
        The number of layers frozen.

    Example:

    ```python
    deeplab_keras.train.freeze_batch_norm(model)
    model.compile(optimizer=..., loss=...)
    ```
    """
    layers = batch_norm_layers(model)
    for layer in layers:
        layer.trainable = False
    return len(layers)


def make_optimizer(name="sgd", learning_rate=0.007, momentum=0.9, weight_decay=0.0,
                   weight_decay_mode=None, head_multiplier=1.0, head_bias_multiplier=None,
                   model=None, **kwargs):
    """Builds the optimizer of a DeepLab recipe.

    Args:
        name: "sgd" (momentum SGD, the papers) or "adamw".
        learning_rate: float or schedule (e.g. `PolyDecay`).
        momentum: SGD momentum (0.9); for AdamW it is ignored.
        weight_decay: coefficient (0 for none).
        weight_decay_mode: "l2" (Caffe / TF-slim: added to kernel gradients;
            biases and BN not decayed) or "decoupled" (Keras' `weight_decay`:
            `w -= lr * wd * w` at the base rate, all variables). Default: "l2"
            for SGD, "decoupled" for AdamW.
        head_multiplier: learning-rate factor for the head (10 in DeepLab v2;
            needs `model`).
        head_bias_multiplier: optional separate factor for head biases (20).
        model: the model whose head gets the factor.
        **kwargs: further arguments of the Keras optimizer (nesterov,
            clipnorm, ...).

    Example:

    ```python
    from deeplab_keras import train
    optimizer = train.make_optimizer("sgd", train.PolyDecay(2.5e-4, 20000), momentum=0.9,
                                     weight_decay=5e-4, head_multiplier=10.0, model=model)
    ```
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"make_optimizer: `name` must be one of {OPTIMIZERS}; received "
                         f"{name!r}.")
    if weight_decay_mode is None:
        weight_decay_mode = "l2" if name == "sgd" else "decoupled"
    if weight_decay_mode not in WEIGHT_DECAY_MODES:
        raise ValueError(f"make_optimizer: `weight_decay_mode` must be one of "
                         f"{WEIGHT_DECAY_MODES}; received {weight_decay_mode!r}.")
    lr_multipliers = None
    if float(head_multiplier) != 1.0 or head_bias_multiplier is not None:
        if model is None:
            raise ValueError("make_optimizer: head_multiplier needs `model=` to tell the head "
                             "from the backbone.")
        lr_multipliers = head_lr_multipliers(model, head_multiplier, head_bias_multiplier)
    l2 = float(weight_decay) if weight_decay_mode == "l2" else 0.0
    decoupled = float(weight_decay) if weight_decay_mode == "decoupled" and weight_decay else None
    if name == "sgd":
        return SGDWithMultipliers(learning_rate, lr_multipliers=lr_multipliers,
                                  l2_weight_decay=l2, momentum=momentum,
                                  weight_decay=decoupled, **kwargs)
    return AdamWWithMultipliers(learning_rate, lr_multipliers=lr_multipliers,
                                l2_weight_decay=l2, weight_decay=decoupled or 0.0, **kwargs)


__all__ = ["AdamWWithMultipliers", "SGDWithMultipliers", "batch_norm_layers",
           "find_backbone", "freeze_batch_norm", "head_lr_multipliers", "make_optimizer"]
