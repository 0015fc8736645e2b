"""Pre-training the MarkerPoser on synthetic bodies of the body model (THUNDR): its own small loop.

Samples (`sample_bodies`): betas ~ N(0, beta_std^2) per component; every non-root joint gets an
axis-angle rotation with components ~ N(0, pose_std^2), its angle capped at max_angle (a generic
range limit: the body-model file carries no per-joint anatomical limits); the root is the upright,
camera-facing mean-body rotation (models/mean_body.py), turned by a uniform yaw about the camera's
vertical axis and tilted by N(0, tilt_std^2) about x and z; the body's centre is placed at depth
U(depth) metres within +-0.2 z sideways. Markers of the posed mesh get N(0, noise^2) noise per
coordinate.

Speed: pre-training needs joints and markers only, so it runs on `marker_submodel`, the same body
model restricted to the vertices its markers (and joint regressor, if any) read (exact: skinning is
per vertex; 64 of Anny's 13,718 vertices), which makes a CPU step several times cheaper.

Loss per step: mean joint distance (camera frame, metres) + mean distance of the posed mesh's markers
to the clean markers + mean squared Frobenius rotation error over all joints + 0.01 * mean squared
beta error. `evaluate_markerposer` reports the root-relative joint error (MPJPE over the body model's
joints) next to the mean-pose baseline: mean shape and rest local rotations with the TRUE root
rotation and position, i.e. what a network that knows nothing but the global placement would get.
"""
import math

import numpy as np
import keras
import tensorflow as tf

from models.markerposer import new_markerposer
from models.mean_body import mean_body
from pose_era import geometry
from pose_era.body import BodyModel
from pose_era.losses import mean_distance, root_relative


def marker_submodel(body_model):
    """The body model restricted to the vertices its markers and joint regressor read: identical
    joints and markers for every input; no faces and no keypoint sets."""
    a = body_model.arrays
    markers = a["markers"]
    if markers.ndim == 1:
        markers = np.eye(body_model.num_vertices, dtype=np.float32)[markers]
    regressors = {"markers": markers}
    if "J_regressor" in a:
        regressors["J_regressor"] = a["J_regressor"]
    keep = np.flatnonzero(np.any([np.any(r != 0, axis=0) for r in regressors.values()], axis=0))
    sub = {k: a[k] for k in ("parents", "joint_names", "joints_template", "joints_shapedirs",
                             "joint_flip", "marker_flip") if k in a}
    sub.update({k: a[k][keep] for k in ("v_template", "shapedirs", "weights", "posedirs")
                if k in a})
    sub.update({k: r[:, keep] for k, r in regressors.items()})
    sub["faces"] = np.zeros((0, 3), np.int64)
    return BodyModel(sub)


def _rot_about(axis, angle):
    """(B,) angles -> (B,3,3) rotations about a fixed unit axis."""
    return geometry.axis_angle_to_matrix(angle[:, None] * tf.constant(axis, tf.float32)[None])


def sample_bodies(body_model, batch, gen, noise=0.01, pose_std=0.4, max_angle=1.5, beta_std=1.0,
                  tilt_std=0.15, depth=(2.0, 8.0), mean=None):
    """Random bodies in the camera frame: dict(betas, rotmats, transl, joints, markers (clean),
    noisy_markers) as float32 tensors; `gen` is a tf.random.Generator."""
    mean = mean_body(body_model) if mean is None else mean
    j, s = body_model.num_joints, body_model.num_betas
    betas = gen.normal([batch, s]) * beta_std
    aa = gen.normal([batch, j - 1, 3]) * pose_std
    angle = tf.norm(aa, axis=-1, keepdims=True)
    aa = aa * tf.minimum(1.0, max_angle / tf.maximum(angle, 1e-6))
    yaw = _rot_about((0.0, 1.0, 0.0), gen.uniform([batch], -math.pi, math.pi))
    tilt = geometry.axis_angle_to_matrix(
        gen.normal([batch, 3]) * tilt_std * tf.constant([1.0, 0.0, 1.0]))
    root = tf.matmul(tilt, tf.matmul(yaw, tf.broadcast_to(tf.constant(mean["root"]),
                                                          [batch, 3, 3])))
    rotmats = tf.concat([root[:, None], geometry.axis_angle_to_matrix(aa)], axis=1)
    z = gen.uniform([batch], depth[0], depth[1])
    side = gen.uniform([batch, 2], -0.2, 0.2) * z[:, None]
    centre = tf.concat([side, z[:, None]], axis=-1)
    # The upright body's box centre c = -transl_offset turns about the root joint r with the body:
    # transl = centre - r - Q (c - r), Q = tilt yaw.
    r = tf.constant(mean["root_joint"])
    c = -tf.constant(mean["transl_offset"])
    transl = centre - r - tf.einsum("bij,j->bi", tf.matmul(tilt, yaw), c - r)
    out = body_model(betas, rotmats, transl)
    noisy = out["markers"] + gen.normal(tf.shape(out["markers"])) * noise
    return {"betas": betas, "rotmats": rotmats, "transl": transl, "joints": out["joints"],
            "markers": out["markers"], "noisy_markers": noisy}


def pretrain_loss(pred_params, pred_body, sample):
    """Scalar loss of one batch (see the module docstring)."""
    rot = tf.reduce_mean(tf.reduce_sum(tf.square(pred_params["rotmats"] - sample["rotmats"]),
                                       axis=[-2, -1]))
    betas = tf.reduce_mean(tf.square(pred_params["betas"] - sample["betas"]))
    return (tf.reduce_mean(mean_distance(pred_body["joints"], sample["joints"]))
            + tf.reduce_mean(mean_distance(pred_body["markers"], sample["markers"]))
            + rot + 0.01 * betas)


def pretrain_markerposer(body_model, steps=20000, batch=64, noise=0.01, seed=0, lr=1e-3,
                         layer=None, log_every=0, **sample_kwargs):
    """Train a MarkerPoser (`layer`, or a new default one) on synthetic bodies; returns it.

    Adam with a cosine decay from lr to lr/100 over `steps`. Save it with
    models.markerposer.save_weights(layer, path) and load it in the full network through
    config.model.markerposer.weights (same hidden sizes and activation).
    """
    layer = new_markerposer(body_model) if layer is None else layer
    mean = mean_body(body_model)
    body_model = marker_submodel(body_model)
    gen = tf.random.Generator.from_seed(seed)
    schedule = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.01)
    opt = keras.optimizers.Adam(schedule)

    @tf.function
    def step():
        sample = sample_bodies(body_model, batch, gen, noise=noise, mean=mean, **sample_kwargs)
        with tf.GradientTape() as tape:
            params = layer(sample["noisy_markers"], training=True)
            loss = pretrain_loss(params, body_model(params["betas"], params["rotmats"],
                                                    params["transl"]), sample)
        grads = tape.gradient(loss, layer.trainable_variables)
        opt.apply_gradients(zip(grads, layer.trainable_variables))
        return loss

    for i in range(steps):
        loss = step()
        if log_every and (i + 1) % log_every == 0:
            print(f"step {i + 1}/{steps} loss {float(loss):.4f}", flush=True)
    return layer


def evaluate_markerposer(layer, body_model, num=1024, seed=12345, noise=0.0, batch=256,
                         **sample_kwargs):
    """Root-relative joint errors in mm on `num` fresh bodies: dict(mpjpe_mm, baseline_mm)."""
    mean = mean_body(body_model)
    body_model = marker_submodel(body_model)
    gen = tf.random.Generator.from_seed(seed)
    errors, baseline = [], []
    for start in range(0, num, batch):
        n = min(batch, num - start)
        sample = sample_bodies(body_model, n, gen, noise=noise, mean=mean, **sample_kwargs)
        params = layer(sample["noisy_markers"], training=False)
        pred = body_model(params["betas"], params["rotmats"], params["transl"])["joints"]
        rest = tf.concat([sample["rotmats"][:, :1],
                          tf.eye(3, batch_shape=[n, body_model.num_joints - 1])], axis=1)
        base = body_model(tf.zeros_like(sample["betas"]), rest, sample["transl"])["joints"]
        true = root_relative(sample["joints"])
        errors.append(mean_distance(root_relative(pred), true).numpy())
        baseline.append(mean_distance(root_relative(base), true).numpy())
    return {"mpjpe_mm": 1000 * float(np.mean(np.concatenate(errors))),
            "baseline_mm": 1000 * float(np.mean(np.concatenate(baseline)))}
