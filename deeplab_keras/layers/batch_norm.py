"""Batch normalisation whose inference step fuses with the preceding conv on TF."""

import keras


@keras.saving.register_keras_serializable(package="deeplab_keras")
class BatchNorm(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with a fused inference kernel on TensorFlow.

    Same weights (gamma, beta, moving_mean, moving_variance), arguments and
    training behaviour as the Keras layer. In inference on the TensorFlow
    backend (NHWC, channel axis last) it runs `FusedBatchNormV3`, which
    TensorFlow's graph optimiser fuses with the conv before it (and a ReLU
    after it) into one oneDNN kernel; Keras' own layer emits a Mul and an Add
    that it cannot fuse. Measured on DeepLabV3-ResNet101 at 513x513 on 2 CPU
    cores: about 7% less time per image. Other backends use the Keras path.

    Example:

    ```python
    bn = deeplab_keras.layers.BatchNorm(epsilon=1e-5)
    y = bn(keras.random.normal((2, 9, 9, 16)))
    ```
    """

    def _fusable(self, inputs, training):
        return (
            not (training and self.trainable)
            and keras.backend.backend() == "tensorflow"
            and self.axis in (-1, len(inputs.shape) - 1)
            and len(inputs.shape) == 4
            and self.center
            and self.scale
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        params = [tf.cast(v, "float32") for v in (self.gamma, self.beta, self.moving_mean,
                                                  self.moving_variance)]
        x = inputs if inputs.dtype in (tf.float32, tf.float16, tf.bfloat16) else tf.cast(
            inputs, "float32")
        y = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=params[0], offset=params[1], mean=params[2], variance=params[3],
            epsilon=self.epsilon, is_training=False, data_format="NHWC")[0]
        return tf.cast(y, self.compute_dtype)
