"""A tiny regression task (y = x @ w_true) that exercises the training driver in seconds."""
import keras
import numpy as np
import tensorflow as tf

from training.tasks.base import Task

W_TRUE = np.arange(1, 9, dtype=np.float32).reshape(8, 1) / 8.0


def _arrays(n, seed):
    x = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return x, x @ W_TRUE


def toy_model():
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="out")(hidden)
    return keras.Model(inputs, outputs)


class ToyTask(Task):
    def build_model(self):
        return toy_model()

    def train_size(self):
        return 256

    def train_dataset(self, input_context=None):
        x, y = _arrays(self.train_size(), 0)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        batch = self.config.train.batch_size
        if input_context is not None:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            batch = input_context.get_per_replica_batch_size(batch)
        return ds.repeat().batch(batch, drop_remainder=True)

    def eval_dataset(self):
        x, y = _arrays(64, 1)
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(32)

    def compute_loss(self, model, inputs, targets, training):
        pred = model(inputs, training=training)
        per_example = tf.reduce_mean(tf.square(pred - targets), axis=-1)
        return per_example, {"mse": tf.reduce_mean(per_example)}

    def regularized_weights(self, model):
        return [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Dense)]

    def evaluate(self, model, dataset):
        errors = [tf.reduce_mean(tf.square(model(x) - y)).numpy() for x, y in dataset]
        return {"mse": float(np.mean(errors))}
