"""Shared bases: a functional model built from its constructor arguments, and the backbone.

`ConfiguredModel` is the base of every backbone and every DeepLab model: a subclass builds its
functional graph in `__init__` and passes its constructor arguments to `_init_model`;
`get_config` returns them with `name`, `trainable` and `dtype` (keras-hub's `Backbone` idiom),
so `from_config(get_config())` rebuilds the same network. `dtype` (a dtype policy such as
"mixed_bfloat16") is the policy every layer is built with; it defaults to the global policy at
build time and is recorded in the config, so a saved model reloads with the same policy.
"""

import contextlib
import functools
import inspect

import keras


@contextlib.contextmanager
def dtype_policy_scope(policy):
    """Builds layers under `policy` (a `keras.DTypePolicy`; None: the global one)."""
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _build_with_dtype(init):
    """Wraps a subclass `__init__` so its layers are built under the `dtype` argument, and the
    outermost constructor call runs the class's `_prepare_kwargs` / `_after_build` hooks.

    The wrapper advertises `init`'s own signature (Keras inspects constructor signatures).
    """

    def wrapper(self, *args, dtype=None, **kwargs):
        outermost = not hasattr(self, "_build_policy")
        policy = keras.dtype_policies.get(dtype) if dtype is not None else None
        extras = {}
        if outermost:
            type(self)._check_kwargs(kwargs)  # before anything is built
            object.__setattr__(self, "_build_policy", policy or keras.config.dtype_policy())
            kwargs, extras = type(self)._prepare_kwargs(kwargs)
        with dtype_policy_scope(policy):
            init(self, *args, **kwargs)
        if outermost:
            self._after_build(**extras)

    functools.update_wrapper(wrapper, init)
    del wrapper.__wrapped__
    wrapper.__signature__ = inspect.signature(init)
    return wrapper


class ConfiguredModel(keras.Model):
    """A functional model whose constructor arguments are its config (plus name, trainable and
    dtype). Subclasses build their graph in `__init__` and call `_init_model`.

    Example:

    ```python
    class Tiny(ConfiguredModel):
        def __init__(self, filters=8, **kwargs):
            x = keras.Input((None, None, 3))
            y = keras.layers.Conv2D(filters, 3)(x)
            self._init_model(x, y, dict(filters=filters), **kwargs)
    ```
    """

    # Keyword arguments every subclass takes besides its own (keras.Model's).
    BASE_KWARGS = ("name", "trainable", "dtype")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _build_with_dtype(cls.__dict__["__init__"])

    @classmethod
    def _prepare_kwargs(cls, kwargs):
        """`(constructor kwargs, extras for _after_build)`: a hook for subclasses."""
        return kwargs, {}

    def _after_build(self):
        """Runs once the outermost constructor has built the model: a hook for subclasses."""

    @classmethod
    def accepted_kwargs(cls):
        """Every keyword argument the constructor takes."""
        names = set(cls.BASE_KWARGS)
        for klass in cls.__mro__:  # a constructor with **kwargs passes them to its parent's
            if "__init__" not in vars(klass) or not issubclass(klass, ConfiguredModel):
                continue
            parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
            names |= {p.name for p in parameters if p.name != "self" and p.kind in (
                p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            if not any(p.kind == p.VAR_KEYWORD for p in parameters):
                break
        return tuple(sorted(names))

    @classmethod
    def _check_kwargs(cls, kwargs, accepted=None):
        """TypeError naming every unknown keyword argument and the accepted ones."""
        accepted = cls.accepted_kwargs() if accepted is None else accepted
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise TypeError(f"{cls.__name__} got unexpected keyword argument(s) {unknown}; it "
                            f"accepts {list(cls.accepted_kwargs())}.")

    def _init_model(self, inputs, outputs, config, **kwargs):
        self._check_kwargs(kwargs, self.BASE_KWARGS)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._config = dict(config)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": keras.dtype_policies.serialize(self._build_policy)}
        for key, value in self._config.items():
            if isinstance(value, (keras.layers.Layer, keras.Model)):
                value = keras.saving.serialize_keras_object(value)
            config[key] = value
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Backbone(ConfiguredModel):
    """A feature extractor whose output is a dict of named feature maps.

    Subclasses build a functional graph from `keras.Input((None, None, 3))`
    and pass a dict of outputs to `Backbone._init_backbone`. Every backbone has:

    - `output_stride`: the stride of its deepest feature ("high_level").
    - `feature_names`: the keys of its output dict, always including
      "high_level" (input to the ASPP) and "low_level" (stride 4, input to the
      v3+ decoder).
    - `feature_strides`: stride of each feature.

    Inputs are already-normalised images (models normalise); backbones do not
    normalise themselves.
    """

    def _init_backbone(self, inputs, features, output_stride, feature_strides, config,
                       **kwargs):
        missing = {"high_level", "low_level"} - set(features)
        if missing:
            raise ValueError(f"Backbone is missing required features {sorted(missing)}.")
        self._init_model(inputs, features, dict(config, output_stride=output_stride), **kwargs)
        self.output_stride = output_stride
        self.feature_strides = dict(feature_strides)

    @property
    def feature_names(self):
        return sorted(self.feature_strides)


__all__ = ["Backbone", "ConfiguredModel", "dtype_policy_scope"]
