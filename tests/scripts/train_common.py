"""Tiny deterministic model and data shared by the training subprocess scripts."""

import keras
import numpy as np

BATCH = 4
SIZE = 16
NUM_CLASSES = 3


def make_batch(step, seed=0, batch=BATCH):
    """Batch `step` of the run: the same arrays for the same (seed, step), every time."""
    rng = np.random.default_rng([seed, step])
    x = rng.uniform(0, 1, (batch, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, (batch, SIZE, SIZE)).astype("int32")
    return x, y


class StepBatches(keras.utils.PyDataset):
    """Batches start, start + 1, ..., start + num_steps - 1 as a PyDataset."""

    def __init__(self, start, num_steps, seed=0, batch=BATCH, **kwargs):
        super().__init__(**kwargs)
        self.start, self.num_steps, self.seed, self.batch = start, num_steps, seed, batch

    def __len__(self):
        return self.num_steps

    def __getitem__(self, index):
        return make_batch(self.start + index, self.seed, self.batch)


def tf_batches(start, num_steps, seed=0, batch=BATCH):
    """The same batches as a tf.data.Dataset."""
    import tensorflow as tf

    xs, ys = zip(*[make_batch(step, seed, batch) for step in range(start, start + num_steps)])
    return tf.data.Dataset.from_tensor_slices((np.stack(xs), np.stack(ys)))


def dataset_fn(kind, seed=0, batch=BATCH):
    if kind == "tf":
        return lambda start, n: tf_batches(start, n, seed, batch)
    return lambda start, n: StepBatches(start, n, seed, batch)


def make_model(dropout=0.25, learning_rate=0.05, batch_norm=True, optimizer="adam"):
    """Conv -> BatchNorm -> ReLU -> Dropout -> 1x1 conv, compiled with Adam or SGD."""
    layers = [keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(8, 3, padding="same")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.ReLU(), keras.layers.Dropout(dropout),
               keras.layers.Conv2D(NUM_CLASSES, 1)]
    model = keras.Sequential(layers)
    if optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate)
    else:
        optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def same_start_model_fn(**make_model_kwargs):
    """A model_fn whose every model starts from the first one's weights (SGD, no dropout);
    those weights are in `model_fn.initial_weights` once it has been called."""
    kwargs = dict(dropout=0.0, optimizer="sgd", **make_model_kwargs)
    initial = []

    def model_fn():
        model = make_model(**kwargs)
        if initial:
            model.set_weights(initial)
        else:
            initial.extend(model.get_weights())
        return model

    model_fn.initial_weights = initial
    return model_fn


def save_weights_npz(model, path):
    np.savez(path, *[np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights])
