"""Fully connected CRF (Krähenbühl & Koltun, NIPS 2011) as a Keras layer."""

import math
import weakref

import keras
from keras import ops

from deeplab_keras.crf import lattice as lattice_lib
from deeplab_keras.crf import params as params_lib
from deeplab_keras.ops.concrete import is_concrete

# DenseCRF layer -> {(batch, classes, dtypes): tf.function}; weak, so the layer owns its graphs.
_GRAPH_FUNCTIONS = weakref.WeakKeyDictionary()


def gaussian_taps(theta):
    """1-D exact Gaussian taps exp(-k^2 / 2 theta^2) for |k| <= ceil(3 theta)."""
    radius = max(1, int(math.ceil(3.0 * theta)))
    return [math.exp(-(k * k) / (2.0 * theta * theta)) for k in range(-radius, radius + 1)]


def separable_gaussian(values, theta):
    """Exact spatial Gaussian filter (self term included, zeros outside) of [H, W, C]."""
    taps = ops.convert_to_tensor(gaussian_taps(theta), "float32")
    k, channels = taps.shape[0], values.shape[-1]
    column = ops.tile(ops.reshape(taps, (k, 1, 1, 1)), (1, 1, channels, 1))
    row = ops.tile(ops.reshape(taps, (1, k, 1, 1)), (1, 1, channels, 1))
    x = ops.depthwise_conv(values[None], column, padding="same")
    return ops.depthwise_conv(x, row, padding="same")[0]


@keras.saving.register_keras_serializable(package="deeplab_keras")
class DenseCRF(keras.layers.Layer):
    """Dense CRF mean-field inference with Gaussian edge potentials.

    Called as `crf([logits, image])` with logits `[B, H, W, C]` and an RGB
    image `[B, H, W, 3]` in 0..255. The unary is `-log_softmax(logits)`
    (pydensecrf's `unary_from_softmax`). Each of `iterations` mean-field
    steps adds `w1 * K_app(Q) + w2 * K_smooth(Q)` (Potts compatibility) to
    the logits and renormalises, as pydensecrf's `inference` does. Returns the
    log of the final marginals, so `argmax` gives the labels.

    The appearance kernel `exp(-|dp|^2/2 theta_alpha^2 - |dI|^2/2
    theta_beta^2)` is filtered in O(N) on a permutohedral lattice built once
    per image, with pydensecrf's symmetric normalisation; the smoothness
    kernel `exp(-|dp|^2/2 theta_gamma^2)` is an exact separable Gaussian,
    normalised the same way. Everything is linear in Q, so the layer is
    differentiable with respect to the logits (and the learnable weights).

    Speed (BENCHMARKS.md, 500x375, 21 labels, 2 CPU cores): on TensorFlow
    0.6-0.7x pydensecrf's time; on JAX on a CPU about 10x slower than
    pydensecrf (XLA's CPU scatter is slow, and under `jit` the lattice is
    padded to its bound), so on CPUs run the CRF on TensorFlow.

    Args:
        iterations: mean-field steps (10).
        appearance_weight: w1 (4). theta_alpha: spatial std of the appearance
            kernel in pixels (67). theta_beta: colour std (3).
        smoothness_weight: w2 (3). theta_gamma: spatial std in pixels (1).
        learnable: if True, learn per-class kernel weight matrices (C x C,
            initialised to w * I) and a compatibility matrix (initialised to
            Potts, -I), as in CRF-as-RNN. The thetas stay fixed.

    Example:

    ```python
    crf = deeplab_keras.layers.DenseCRF.from_preset("deeplab_resnet101_voc")
    refined = crf([logits, images])        # logits [B, H, W, C], images RGB 0..255
    labels = keras.ops.argmax(refined, -1)
    ```
    """

    def __init__(self, iterations=10, appearance_weight=4.0, theta_alpha=67.0, theta_beta=3.0,
                 smoothness_weight=3.0, theta_gamma=1.0, learnable=False, **kwargs):
        super().__init__(**kwargs)
        if int(iterations) < 1:
            raise ValueError(f"DenseCRF: `iterations` must be >= 1; received {iterations}.")
        for name, value in (("theta_alpha", theta_alpha), ("theta_beta", theta_beta),
                            ("theta_gamma", theta_gamma)):
            if not float(value) > 0:
                raise ValueError(f"DenseCRF: `{name}` must be > 0; received {value}.")
        self.iterations = int(iterations)
        self.appearance_weight, self.smoothness_weight = float(appearance_weight), float(
            smoothness_weight)
        self.theta_alpha, self.theta_beta = float(theta_alpha), float(theta_beta)
        self.theta_gamma = float(theta_gamma)
        self.learnable = bool(learnable)

    @classmethod
    def from_params(cls, params, **kwargs):
        """A CRF from a `crf.params.CRFParams`, five numbers (w1, theta_alpha, theta_beta, w2,
        theta_gamma) or a preset name; `kwargs` are the other constructor arguments."""
        return cls(**params_lib.as_params(params)._asdict(), **kwargs)

    @classmethod
    def from_preset(cls, name, **kwargs):
        """A CRF with the parameters of a named preset (see `DenseCRF.presets()`)."""
        return cls.from_params(params_lib.preset(name), **kwargs)

    @staticmethod
    def presets():
        """`{name: CRFParams}` of the presets (`deeplab_keras.crf.params.PRESETS`)."""
        return dict(params_lib.PRESETS)

    @property
    def params(self):
        """The five parameters as a `crf.params.CRFParams`."""
        return params_lib.CRFParams(self.appearance_weight, self.theta_alpha, self.theta_beta,
                                    self.smoothness_weight, self.theta_gamma)

    def build(self, input_shape):
        logits_shape, image_shape = (tuple(s) for s in input_shape)
        self._check_shapes(logits_shape, image_shape)
        if 0 in logits_shape[1:3] + image_shape[1:3]:
            raise ValueError(f"DenseCRF: empty input (shapes {logits_shape}, {image_shape}).")
        num_classes = logits_shape[-1]
        if num_classes is None or num_classes < 2:
            raise ValueError(f"DenseCRF needs a known number of classes >= 2; received "
                             f"logits shape {logits_shape}.")
        self.num_classes = num_classes
        if self.learnable:
            def eye_init(scale):
                return lambda shape, dtype=None: ops.eye(shape[0], dtype=dtype) * scale

            self.appearance_kernel = self.add_weight(
                name="appearance_kernel", shape=(num_classes, num_classes),
                initializer=eye_init(self.appearance_weight))
            self.smoothness_kernel = self.add_weight(
                name="smoothness_kernel", shape=(num_classes, num_classes),
                initializer=eye_init(self.smoothness_weight))
            self.compatibility = self.add_weight(
                name="compatibility", shape=(num_classes, num_classes),
                initializer=eye_init(-1.0))

    @staticmethod
    def _check_shapes(logits_shape, image_shape):
        if len(logits_shape) != 4 or len(image_shape) != 4:
            raise ValueError("DenseCRF expects logits [B, H, W, C] and image [B, H, W, 3]; "
                             f"received shapes {logits_shape} and {image_shape}.")
        if image_shape[-1] != 3:
            raise ValueError(f"DenseCRF: the image must have 3 (RGB) channels; received "
                             f"shape {image_shape}.")
        for axis, what in ((0, "batch size"), (1, "height"), (2, "width")):
            a, b = logits_shape[axis], image_shape[axis]
            if a is not None and b is not None and a != b:
                fix = ("pass one image per logits map" if axis == 0
                       else "resize the logits to the image first")
                raise ValueError(f"DenseCRF: logits {what} {a} != image {what} {b} (shapes "
                                 f"{logits_shape}, {image_shape}); {fix}.")

    def _check_values(self, logits, image):
        if not (is_concrete(logits) and is_concrete(image)):
            return
        if not bool(ops.convert_to_numpy(ops.all(ops.isfinite(logits)))):
            raise ValueError("DenseCRF: the logits contain NaN or inf values.")
        if not bool(ops.convert_to_numpy(ops.all(ops.isfinite(image)))):
            raise ValueError("DenseCRF: the image contains NaN or inf values.")

    def _refine_one(self, logits, image):
        """Mean field on one image: logits [H, W, C], image [H, W, 3] -> log marginals."""
        height, width, classes = logits.shape[0], logits.shape[1], logits.shape[2]
        if height is None or width is None:
            height, width = ops.shape(logits)[0], ops.shape(logits)[1]
        features = ops.stop_gradient(
            lattice_lib.image_features(image, self.theta_alpha, self.theta_beta))
        lattice = lattice_lib.build_lattice(features, compact=lattice_lib.compact_supported())
        # Fixed weights are folded into the filters; learnable ones are C x C matrices.
        w1, w2 = (1.0, 1.0) if self.learnable else (self.appearance_weight,
                                                    self.smoothness_weight)
        appearance = lattice_lib.normalized_filter_fn(lattice, weight=w1)
        ones = ops.ones((height, width, 1), "float32")
        smooth_norm = 1.0 / ops.sqrt(separable_gaussian(ones, self.theta_gamma) + 1e-20)
        smooth_out = w2 * smooth_norm
        unary_logits = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        q = ops.exp(unary_logits)
        for _ in range(self.iterations):
            q_app = ops.reshape(appearance(ops.reshape(q, (-1, classes))),
                                (height, width, classes))
            q_smooth = smooth_out * separable_gaussian(smooth_norm * q, self.theta_gamma)
            if self.learnable:
                messages = (
                    ops.matmul(q_app, ops.cast(self.appearance_kernel, "float32"))
                    + ops.matmul(q_smooth, ops.cast(self.smoothness_kernel, "float32")))
                tmp = unary_logits - ops.matmul(messages, ops.cast(self.compatibility,
                                                                   "float32"))
            else:
                tmp = unary_logits + q_app + q_smooth
            q = ops.softmax(tmp, axis=-1)
        return ops.log_softmax(tmp, axis=-1)

    def call(self, inputs):
        logits, image = inputs
        self._check_shapes(tuple(logits.shape), tuple(image.shape))
        self._check_values(logits, image)
        if keras.backend.backend() == "tensorflow" and is_concrete(logits):
            return self._graph_function(logits, image)(logits, image)
        return self._refine_batch(logits, image)

    def _graph_function(self, logits, image):
        """On TensorFlow, an eager call (e.g. from `deeplab_keras.segment`) runs the mean field
        as one graph, traced once per batch size, class count and dtypes, for any image size."""
        import tensorflow as tf

        key = (logits.shape[0], logits.shape[-1], logits.dtype, image.dtype)
        functions = _GRAPH_FUNCTIONS.setdefault(self, {})
        if key not in functions:
            layer = weakref.ref(self)  # the cache must not keep the layer alive
            functions[key] = tf.function(lambda a, b: layer()._refine_batch(a, b), input_signature=[
                tf.TensorSpec((key[0], None, None, key[1]), key[2]),
                tf.TensorSpec((key[0], None, None, 3), key[3])])
        return functions[key]

    def _refine_batch(self, logits, image):
        if logits.shape[0] is not None:
            outs = [self._refine_one(logits[i], image[i]) for i in range(logits.shape[0])]
            return ops.stack(outs, axis=0)
        packed = ops.concatenate([ops.cast(logits, "float32"), ops.cast(image, "float32")], -1)
        classes = logits.shape[-1]
        return ops.map(lambda x: self._refine_one(x[..., :classes], x[..., classes:]), packed)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def compute_output_spec(self, inputs):
        logits = inputs[0]
        return keras.KerasTensor(logits.shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({
            "iterations": self.iterations, "appearance_weight": self.appearance_weight,
            "theta_alpha": self.theta_alpha, "theta_beta": self.theta_beta,
            "smoothness_weight": self.smoothness_weight, "theta_gamma": self.theta_gamma,
            "learnable": self.learnable,
        })
        return config
