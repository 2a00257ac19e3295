"""Run a loaded model at another precision: the same network and weights under a Keras dtype
policy ("mixed_bfloat16" for bfloat16 arithmetic on CPUs with AVX-512 BF16 / AMX and on GPUs)."""

import keras

from deeplab_keras.backbones.base import ConfiguredModel

# Constructor arguments that hold a whole nested model (a wrapper's model, a model's backbone).
_NESTED_MODELS = ("model", "backbone")


def with_dtype_policy(model, dtype):
    """`model` rebuilt under the dtype policy `dtype`, with the same weights.

    Variables stay float32 under the "mixed_*" policies (only the arithmetic changes), the
    logits stay float32, and the dense CRF, if any, keeps its own float32 layer. Class names,
    palette and `weight_record` carry over; the original model is left as it was.

    Args:
        model: a deeplab_keras model (a DeepLab model, `MSC` or `CRFRefined`), e.g. from
            `deeplab_keras.load_model`.
        dtype: a Keras dtype policy name: "mixed_bfloat16", "mixed_float16" or "float32";
            None returns `model` as it is.

    Returns:
        A new model of the same class. Its `dtype_policy.name` is `dtype`.

    Example:

    ```python
    model = deeplab_keras.load_model("deeplabv3plus_mobilenetv2_camvid")
    fast = with_dtype_policy(model, "mixed_bfloat16")
    labels = deeplab_keras.segment(fast, image).labels
    ```
    """
    if not isinstance(model, ConfiguredModel):
        raise TypeError("with_dtype_policy: expected a deeplab_keras model (built by "
                        f"deeplab_keras.models or load_model); received {type(model).__name__}.")
    if dtype is None:
        return model
    if dtype not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise ValueError(f"with_dtype_policy: dtype must be 'float32', 'mixed_bfloat16' or "
                         f"'mixed_float16'; received {dtype!r}. Pure bfloat16/float16 policies "
                         "would round the stored weights; the mixed ones keep them float32.")
    if model.dtype_policy.name == dtype:
        return model
    policy = keras.dtype_policies.serialize(keras.dtype_policies.get(dtype))
    converted = type(model).from_config(_with_policy(model.get_config(), policy))
    source = model.get_weights()
    if len(source) != len(converted.weights):
        raise RuntimeError(f"with_dtype_policy: the rebuilt {type(model).__name__} has "
                           f"{len(converted.weights)} weights, the original {len(source)}.")
    converted.set_weights(source)
    record = getattr(model, "weight_record", None)
    if record is not None:
        object.__setattr__(converted, "weight_record", record)
    return converted


def _with_policy(config, policy):
    config = dict(config, dtype=policy)
    for key in _NESTED_MODELS:
        nested = config.get(key)
        if isinstance(nested, dict) and "dtype" in nested.get("config", {}):
            config[key] = dict(nested, config=_with_policy(nested["config"], policy))
    return config
