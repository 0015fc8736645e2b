"""Image classification as a task of the one training driver (docs/contracts.md, Task interface).

Plugs models/classifiers.py and data_pipelines/classification.py into training.driver: softmax
cross-entropy per example, accuracy as the metric, and L2 only on conv/dense kernels (the driver
adds it), never on ERA or normalisation parameters, as in the ERA reference training.
"""
import math

import keras
import tensorflow as tf

from data_pipelines import classification as data
from models import classifiers
from pose_era.era import ERA
from training.config import ConfigError
from training.tasks.base import Task


def _per_example(model, inputs, targets, training):
    logits = tf.cast(model(inputs, training=training), tf.float32)
    labels = tf.cast(targets, tf.int32)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
    return loss, correct


class ClassificationTask(Task):
    def build_model(self):
        """The classifier of config.model, built (functional) for config.data's image shape.

        A bad name or setting in the config (dataset, model, activation, ERA, norm) is a
        ConfigError, so the driver prints one line instead of a traceback.
        """
        config = self.config
        m = config.model
        kwargs = {}
        if m.name == "resnet18":
            kwargs = {"width": m.width, "stem": m.stem}
        try:
            return classifiers.build(m.name, data.image_shape(config), data.num_classes(config),
                                     activation=m.activation, era=m.era.to_dict(),
                                     norm_learnable=m.norm_learnable,
                                     width_scale=m.width_scale, **kwargs)
        except ValueError as err:
            raise ConfigError(f"config model/data: {err}") from None

    def train_dataset(self, input_context=None):
        return data.train_dataset(self.config, input_context)

    def eval_dataset(self):
        return data.eval_dataset(self.config)

    def train_size(self):
        return data.train_size(self.config)

    def compute_loss(self, model, inputs, targets, training):
        """(per-example cross-entropy (B,), {"accuracy": batch mean})."""
        loss, correct = _per_example(model, inputs, targets, training)
        return loss, {"accuracy": tf.reduce_mean(correct)}

    def regularized_weights(self, model):
        """Conv and dense kernels: the weights the supplement's L2 applies to."""
        return [layer.kernel for layer in model._flatten_layers()
                if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]

    def count_params(self, model):
        """Parameter counts for `python -m pose_era.train --dry_run`: all, ERA's, regularised."""
        layers = list(model._flatten_layers())
        return {"total": model.count_params(),
                "era": sum(l.count_params() for l in layers if isinstance(l, ERA)),
                "kernels": sum(math.prod(w.shape) for w in self.regularized_weights(model))}

    def evaluate(self, model, dataset):
        """Mean loss and accuracy over every example of `dataset` (a partial last batch counts)."""
        @tf.function
        def sums(inputs, targets):
            loss, correct = _per_example(model, inputs, targets, training=False)
            return tf.reduce_sum(loss), tf.reduce_sum(correct), tf.cast(tf.size(loss), tf.float32)

        total_loss = total_correct = count = 0.0
        for inputs, targets in dataset:
            loss, correct, n = sums(inputs, targets)
            total_loss += float(loss)
            total_correct += float(correct)
            count += float(n)
        if count == 0:
            raise ValueError("evaluation dataset is empty: check data.name and the data files")
        return {"loss": total_loss / count, "accuracy": total_correct / count}
