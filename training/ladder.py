"""Learning sanity ladder: can the pose task's network fit a few fixed images at all?

A network that scores worse than the mean body is first a bug to chase. These checks separate the
usual causes: broken gradients or frozen layers (the training-mode error does not fall), a
BatchNorm whose moving statistics lag the batch statistics (training mode fits, inference mode
does not), and losses that fight each other (the error stalls above zero). Each rung trains the
task's own model with the task's own loss, the driver's clipping and Adam, on FIXED batches (no
augmentation, no shuffling), then measures the centred marker error (metres; the markers3d
distance of the last estimate) on those same batches in both BatchNorm modes.

    tests/test_learning_ladder.py        rung 1: a tiny model memorises one batch (< 1 cm)
    python tools/learning_ladder.py      rung 2: the real config memorises 64 synthetic images
"""
import time

import keras
import numpy as np
import tensorflow as tf

from pose_era import losses


def centred_marker_error(model, inputs, targets, training):
    """(B,) centred distance (m) of the model's final markers to the targets' markers."""
    out = model(inputs, training=training)
    return losses.mean_distance(losses.centred(tf.cast(out["markers"], tf.float32)),
                                losses.centred(targets["markers"])).numpy()


def memorise(task, batches, steps, log_every=0):
    """Trains a fresh model of `task` (its config) on `batches` (a list of (inputs, targets)) in turn.

    Returns dict(steps, seconds, before / train_mode / inference_mode: mean centred marker error
    over all batches in metres). Adam at optimizer.lr, gradients clipped at optimizer.clip_norm.
    """
    if not all(float(tf.reduce_min(t["has_markers"])) > 0 for _, t in batches):
        raise ValueError("the batches lack marker labels (has_markers = 0): use a split that "
                         "has them, e.g. the synthetic training split")
    config = task.config
    keras.utils.set_random_seed(int(config.train.seed))
    model = task.build_model()
    optimizer = keras.optimizers.Adam(float(config.optimizer.lr))
    clip = float(config.optimizer.clip_norm)
    variables = model.trainable_variables

    @tf.function
    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            per_example, _ = task.compute_loss(model, inputs, targets, training=True)
            loss = tf.reduce_mean(per_example)
        grads = tape.gradient(loss, variables)
        if clip:
            grads, _ = tf.clip_by_global_norm(grads, clip)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    def error(training):
        return float(np.mean(np.concatenate(
            [centred_marker_error(model, i, t, training) for i, t in batches])))

    result = {"before": error(False)}
    started = time.time()
    for step in range(steps):
        loss = train_step(*batches[step % len(batches)])
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}: loss {float(loss):.4f}, centred marker error "
                  f"{error(False):.4f} m (inference mode)", flush=True)
    seconds = round(time.time() - started, 1)
    # Inference mode first: a training-mode call moves the BatchNorm statistics.
    result.update(steps=steps, seconds=seconds, inference_mode=error(False))
    result["train_mode"] = error(True)
    return result
