"""Rung 1 of the learning ladder (training/ladder.py): a tiny pose model memorises one batch.

The pose config's CPU variant as make demo trains it (its loss, BatchNorm momentum, clipping,
learning rate), shrunk to 64 px and the stick-figure body. Eight fixed noise images, each with
the ground truth of one random posed body placed in front of the crop's camera; after a bounded
number of steps the centred marker error must be < 1 cm IN INFERENCE MODE. It fails on broken
gradients, frozen layers, fighting loss terms, and BatchNorm moving statistics that lag the batch
statistics (Keras' default momentum 0.999 leaves ~5 cm here).
"""
import numpy as np
import tensorflow as tf

from models.markerposer_pretrain import sample_bodies
from pose_era import geometry
from pose_era.body import format as body_format
from tests.tiny_body import tiny_body_arrays
from training import config as config_lib
from training import ladder, tasks

SIZE, BATCH = 64, 8


def tiny_config(body_path, *overrides):
    config = config_lib.load_config("mixer_64:cpu")
    return config_lib.apply_overrides(config, [
        f"body.path={body_path}", "model.num_markers=16", f"data.image_size={SIZE}",
        "model.head.width=32", "model.head.depth=2", "model.head.token_hidden=32",
        "model.head.channel_hidden=64", "model.head.corr_hidden=64",
        "model.head.lift_hidden=64",
        "model.markerposer.hidden=(64,)", "model.markerposer.weights=none",
        "model.markerposer.trainable=true", *overrides])


def fixed_batch(body):
    """8 noise images + the full example schema of 8 random bodies seen by a 64 px crop camera."""
    gen = tf.random.Generator.from_seed(1)
    bodies = sample_bodies(body, BATCH, gen, depth=(3.0, 4.0))
    f = 0.8 * SIZE * 3.5 / 1.8     # a 1.8 m body at 3.5 m fills 0.8 of the crop
    K = tf.constant([[f, 0, SIZE / 2], [0, f, SIZE / 2], [0, 0, 1]], tf.float32)
    K = tf.broadcast_to(K, [BATCH, 3, 3])
    posed = body(bodies["betas"], bodies["rotmats"], bodies["transl"])
    uv = geometry.project(posed["coco17"], K)
    ones = tf.ones([BATCH])
    inputs = {"image": tf.random.stateless_uniform([BATCH, SIZE, SIZE, 3], (2, 3)), "K": K}
    targets = {
        "kp2d": tf.concat([uv, tf.ones_like(uv[..., :1])], -1), "j3d": posed["h36m17"],
        "markers": bodies["markers"], "betas": bodies["betas"],
        "pose": geometry.matrix_to_axis_angle(bodies["rotmats"]), "transl": bodies["transl"],
        "has_j3d": ones, "has_markers": ones, "has_params": ones}
    return inputs, targets


def test_tiny_pose_model_memorises_one_batch_in_inference_mode(tmp_path):
    body_path = tmp_path / "tiny_body.npz"
    body_format.save(body_path, tiny_body_arrays())
    config = tiny_config(body_path)
    task = tasks.get(config.task)(config)
    result = ladder.memorise(task, [fixed_batch(task.body)], steps=300)
    assert result["before"] > 0.05, result          # the mean body is far from these bodies
    assert result["train_mode"] < 0.01, result
    assert result["inference_mode"] < 0.01, result
    assert np.isfinite(list(result.values())).all()
