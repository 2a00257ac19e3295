"""TensorBoard for training: loss/mIoU/learning-rate scalars, validation mIoU and masks.

`callbacks(...)` returns the Keras callbacks the CLI's `train` uses:

* `StepScalars`: the training logs (loss, mIoU, learning rate) at each epoch end (an epoch is
  one checkpoint interval), written against the optimizer step, the same x axis as
  validation, when TensorFlow and the tensorboard package are installed (view with
  `tensorboard --logdir <log_dir>`); it also adds a `step` column to the CSV history;
* `ValidationCallback`: every `every_n_epochs` epochs (an epoch is one checkpoint interval),
  the full validation split's mIoU (written to the logs as `val_miou`, so checkpoints and
  CSV logs see it too) plus a few image | ground truth | prediction panels, both to
  TensorBoard and as PNGs under `<log_dir>/../predictions/`;
* `keras.callbacks.CSVLogger` (`<log_dir>/history.csv`), which needs nothing else.

`read_scalars(log_dir)` reads the event files back (TensorFlow needed), and `plot_curves`
draws a loss/mIoU curve PNG with Pillow only.
"""

import csv
import os

import keras
import numpy as np

from deeplab_keras import visualize
from deeplab_keras.data import classes


def _tf_or_none():
    """TensorFlow when it can write summaries (TF >= 2.20 needs the tensorboard package)."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return None
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


class ValidationCallback(keras.callbacks.Callback):
    """Validation mIoU and prediction panels every `every_n_epochs` epochs.

    Args:
        examples: validation `Example`s (`deeplab_keras.data.list_examples`).
        layout: their `Layout`.
        num_classes: classes of the model.
        log_dir: TensorBoard folder; PNG panels go to `<log_dir>/../predictions`.
        scales: evaluation scales (e.g. `(0.5,)` for a model trained at half resolution).
        every_n_epochs: how often; 0 disables.
        num_images: panels per evaluation.

    Example:

    ```python
    cb = ValidationCallback(val_examples, layout, 11, "runs/x/logs", scales=(0.5,))
    model.fit(dataset, epochs=10, steps_per_epoch=200, callbacks=[cb])
    ```
    """

    def __init__(self, examples, layout, num_classes, log_dir, scales=(1.0,), every_n_epochs=1,
                 num_images=3):
        super().__init__()
        self.examples, self.layout, self.num_classes = list(examples), layout, num_classes
        self.log_dir, self.scales = log_dir, tuple(scales)
        self.every_n_epochs, self.num_images = int(every_n_epochs), int(num_images)
        self.picture_dir = os.path.join(os.path.dirname(os.path.abspath(log_dir)),
                                        "predictions")
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        if not self.examples or self.every_n_epochs <= 0 or (epoch + 1) % self.every_n_epochs:
            return
        from deeplab_keras import data
        from deeplab_keras import evaluation

        result = evaluation.evaluate(
            self.model, data.iterate_eval(self.examples, self.layout),
            num_classes=self.num_classes, ignore_label=self.layout.ignore_label,
            scales=self.scales, class_names=self.layout.class_names, progress=False,
            num_examples=len(self.examples))
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if logs is not None:
            logs["val_miou"] = float(result["miou"])
            logs["val_pixel_accuracy"] = float(result["pixel_accuracy"])
        self.history.append((step, float(result["miou"])))
        print(f"\nstep {step}: val mIoU {100 * result['miou']:.2f} "
              f"({result['num_images']} images)")
        panels = self._panels()
        self._write_pictures(step, panels)
        tf = _tf_or_none()
        if tf is not None:
            if getattr(self, "_writer", None) is None:
                self._writer = tf.summary.create_file_writer(
                    os.path.join(self.log_dir, "validation"))
            writer = self._writer
            # record_if(True): Keras' TensorBoard callback leaves a "record every N steps"
            # condition active during training, which would silently drop these.
            with writer.as_default(step=step), tf.summary.record_if(True):
                tf.summary.scalar("val_miou", result["miou"])
                tf.summary.scalar("val_pixel_accuracy", result["pixel_accuracy"])
                for name, value in result["per_class_iou"].items():
                    if value == value:  # not NaN (class absent)
                        tf.summary.scalar(f"val_iou/{name}", value)
                tf.summary.image("image|truth|prediction", np.stack(
                    [_pad_to(p, panels) for p in panels]), max_outputs=len(panels))
            writer.flush()

    def _panels(self):
        from deeplab_keras import data
        from deeplab_keras import evaluation

        panels = []
        palette = self.layout.palette
        for i, (_, image, mask) in enumerate(data.iterate_eval(self.examples, self.layout)):
            if i >= self.num_images:
                break
            probs = evaluation.predict_probabilities(self.model, image, scales=self.scales)
            pred = np.argmax(np.asarray(probs), axis=-1)
            panels.append(visualize.panel([np.asarray(image, np.uint8),
                                           classes.colorize(mask, palette),
                                           classes.colorize(pred, palette)]))
        return panels

    def _write_pictures(self, step, panels):
        if not panels:
            return
        stacked = np.concatenate([_pad_to(p, panels) for p in panels], axis=0)
        visualize.save_png(stacked, os.path.join(self.picture_dir, f"step_{step:07d}.png"))


class StepScalars(keras.callbacks.Callback):
    """Writes the epoch-end training logs to `<log_dir>/train` against the optimizer step
    (Keras' own TensorBoard callback plots epoch scalars against the epoch index), and adds
    `step` to the logs so the CSV history has it.

    Example:

    ```python
    model.fit(dataset, epochs=10, steps_per_epoch=200, callbacks=[StepScalars("runs/x/logs")])
    ```
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        scalars = {k: float(v) for k, v in (logs or {}).items()
                   if not k.startswith("val_") and np.ndim(v) == 0}
        scalars["learning_rate"] = float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate))
        if logs is not None:
            logs["step"] = step
        tf = _tf_or_none()
        if tf is None:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))
        with self._writer.as_default(step=step), tf.summary.record_if(True):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
        self._writer.flush()


def _pad_to(panel, panels):
    height = max(p.shape[0] for p in panels)
    width = max(p.shape[1] for p in panels)
    out = np.full((height, width, 3), 255, np.uint8)
    out[:panel.shape[0], :panel.shape[1]] = panel
    return out


def callbacks(log_dir, val_examples, layout, num_classes, scales=(1.0,), every_n_epochs=1):
    """The training callbacks described in the module docstring, in the order they must run
    (validation adds `val_*` to the logs, `StepScalars` adds `step`, then the CSV row)."""
    os.makedirs(log_dir, exist_ok=True)
    out = [ValidationCallback(val_examples, layout, num_classes, log_dir, scales=scales,
                              every_n_epochs=every_n_epochs), StepScalars(log_dir)]
    if _tf_or_none() is None:
        print("TensorFlow or tensorboard is not installed: no TensorBoard event files; the "
              f"history is in {os.path.join(log_dir, 'history.csv')}.")
    out.append(keras.callbacks.CSVLogger(os.path.join(log_dir, "history.csv"), append=True))
    return out


def read_scalars(log_dir):
    """{tag: [(step, value), ...]} from every event file under `log_dir` (needs TensorFlow)."""
    import glob

    tf = _tf_or_none()
    if tf is None:
        raise ImportError("read_scalars needs TensorFlow to parse TensorBoard event files.")
    from tensorflow.core.util import event_pb2

    scalars = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"),
                                 recursive=True)):
        run = os.path.relpath(os.path.dirname(path), log_dir)
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.HasField("tensor") and value.tensor.dtype == tf.float32.as_datatype_enum:
                    number = float(tf.make_ndarray(value.tensor))
                elif value.HasField("simple_value"):
                    number = float(value.simple_value)
                else:
                    continue
                scalars.setdefault(f"{run}/{value.tag}", []).append((int(event.step), number))
    return {tag: sorted(points) for tag, points in scalars.items()}


def read_history_csv(path):
    """Rows of a CSVLogger file as {column: [floats]}."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    columns = rows[0].keys() if rows else []
    # Keras' CSVLogger writes "NA" where a metric has no value that epoch.
    return {c: [float(r[c]) for r in rows if r[c] not in ("", None, "NA")] for c in columns}


def plot_curves(curves, path, size=(640, 360), title=""):
    """Draws {name: [(x, y), ...]} as lines (own y-range per curve, scaled to the panel) with
    Pillow; each curve's min and max are printed in the legend. Returns the path."""
    from PIL import Image
    from PIL import ImageDraw

    width, height = size
    margin = 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([margin, margin, width - margin, height - margin], outline=(0, 0, 0))
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    xs = [x for pts in curves.values() for x, _ in pts]
    if not xs:
        raise ValueError("plot_curves: no points to draw.")
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    for i, (name, points) in enumerate(curves.items()):
        ys = [y for _, y in points]
        y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
        line = [(margin + (x - x0) / (x1 - x0) * (width - 2 * margin),
                 height - margin - (y - y0) / (y1 - y0) * (height - 2 * margin))
                for x, y in points]
        colour = colours[i % len(colours)]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        draw.text((margin + 5, margin + 5 + 14 * i),
                  f"{name}: {ys[0]:.3g} -> {ys[-1]:.3g} (min {min(ys):.3g}, max {max(ys):.3g})",
                  fill=colour)
    draw.text((margin, 10), title, fill=(0, 0, 0))
    draw.text((margin, height - margin + 8), f"step {x0:g}", fill=(0, 0, 0))
    draw.text((width - margin - 70, height - margin + 8), f"step {x1:g}", fill=(0, 0, 0))
    return visualize.save_png(image, path)
