"""Fitting the body model to 2D keypoints, starting from the network's estimate (SMPLify/SPIN).

Why: a network trained on synthetic bodies is a rough start on a real photo, while BlazePose's
2D keypoints are accurate; SPIN (Kolotouros et al., 2019) refines the regressed body against
2D keypoints with SMPLify's objective (Bogo et al., 2016). Here, per sample, with the crop's
full-perspective camera K and keypoints in crop pixels:

  E = robust reprojection  sum_k w_k rho(|pi(K X_k) - x_k| / S) / sum_k w_k
      + pose_near  * sum_j |d_j|^2       (d_j: axis-angle change of joint j from the start)
      + shape_near * |b - b0|^2 + shape_prior * |b|^2 / S_b
      + transl_near * |t - t0|^2         (depth is barely seen in 2D: stay near the network)
      + joint_limit * sum_{j>0} relu((1 - cos a_j) - (1 - cos limit))^2  (a_j: joint angle)

with rho the Geman-McClure function sigma^2 e^2 / (sigma^2 + e^2) (SMPLify's robustifier; e in
fractions of the crop side S, so weights do not depend on resolution), w_k the keypoints'
visibility. Rotations are R_j = R0_j exp(d_j), so the start is exactly d = 0. Two stages as in
SMPLify: first the global orientation and translation only, then everything. Adam, a fixed
number of steps (bounded time) in one tf.function, from the start and (as SMPLify does) from
the start turned 180 degrees about the camera's vertical axis, keeping the lower energy
(2D keypoints cannot tell a person's front from their back); every sample is independent (the loss is a
sum over the batch and Adam is elementwise). A sample whose result is not finite gets its
start back, so the outputs are always finite.
"""
from dataclasses import dataclass

import tensorflow as tf

from pose_era import geometry


@dataclass(frozen=True)
class FitOptions:
    """Weights and schedule of the fit (defaults tuned on synthetic renders, docs/eval_demo.md)."""
    steps: int = 200
    global_steps: int = 50       # of which first: root orientation + translation only
    lr: float = 0.02
    sigma: float = 0.1           # Geman-McClure scale, fraction of the crop side
    pose_near: float = 1e-4
    shape_near: float = 1e-4
    shape_prior: float = 1e-4
    transl_near: float = 1e-3
    joint_limit: float = 1.0
    limit_deg: float = 110.0
    try_flip: bool = True        # also start turned 180 degrees; keep the lower energy


def _reprojection(points, K, keypoints, size, sigma):
    """Per-sample robust loss and mean pixel error: points (B,N,3), keypoints (B,N,3) crop px
    + weight."""
    uv = geometry.project(points, K)
    w = keypoints[..., 2] * tf.cast(points[..., 2] > 1e-3, tf.float32)
    # clipped at 1000 crop sides, so even absurd keypoints give finite numbers
    d2 = tf.minimum(tf.reduce_sum(tf.square((uv - keypoints[..., :2]) / size), axis=-1), 1e6)
    rho = sigma ** 2 * d2 / (sigma ** 2 + d2)
    denom = tf.maximum(tf.reduce_sum(w, axis=-1), 1e-6)
    err = tf.sqrt(d2 + 1e-12) * size
    return tf.reduce_sum(w * rho, -1) / denom, tf.reduce_sum(w * err, -1) / denom


class Fitter:
    """fit(K, keypoints, rotmats, betas, transl) for one body model and keypoint set."""

    def __init__(self, body, image_size, keypoint_set="coco17", options=FitOptions()):
        self.body = body
        self.size = float(image_size)
        self.set = keypoint_set
        self.opt = options
        self._fit = tf.function(self._run, reduce_retracing=True)

    def _energy(self, d, b, t, start, K, keypoints):
        rot0, b0, t0 = start
        o = self.opt
        rot = tf.matmul(rot0, geometry.axis_angle_to_matrix(d))
        out = self.body(b, rot, t)
        data, err = _reprojection(out[self.set], K, keypoints, self.size, o.sigma)
        cos = (tf.linalg.trace(rot[:, 1:]) - 1.0) / 2.0
        limit = 1.0 - tf.cos(o.limit_deg * 3.141592653589793 / 180.0)
        over = tf.nn.relu((1.0 - cos) - limit)
        prior = (o.pose_near * tf.reduce_sum(tf.square(d[:, 1:]), [1, 2])
                 + o.shape_near * tf.reduce_sum(tf.square(b - b0), -1)
                 + o.shape_prior * tf.reduce_mean(tf.square(b), -1)
                 + o.transl_near * tf.reduce_sum(tf.square(t - t0), -1)
                 + o.joint_limit * tf.reduce_sum(tf.square(over), -1))
        return data + prior, err

    def _run(self, K, keypoints, rot0, b0, t0):
        o = self.opt
        start = (rot0, b0, t0)
        params = (tf.zeros_like(rot0[..., 0]), tf.identity(b0), tf.identity(t0))
        zeros = tuple(tf.zeros_like(p) for p in params)
        root_only = tf.concat([tf.ones_like(params[0][:, :1]),
                               tf.zeros_like(params[0][:, 1:])], axis=1)
        global_mask = (root_only, tf.zeros_like(b0), tf.ones_like(t0))
        b1, b2, eps = 0.9, 0.999, 1e-8

        def step(i, params, m, v):
            with tf.GradientTape() as tape:
                tape.watch(params)
                energy, _ = self._energy(*params, start, K, keypoints)
                total = tf.reduce_sum(energy)
            grads = tape.gradient(total, params)
            s = tf.cast(i, tf.float32)
            out_p, out_m, out_v = [], [], []
            for p, g, mi, vi, mask in zip(params, grads, m, v, global_mask):
                g = tf.where(tf.math.is_finite(g), g, tf.zeros_like(g))
                g = tf.where(i <= o.global_steps, g * mask, g)
                mi = b1 * mi + (1 - b1) * g
                vi = b2 * vi + (1 - b2) * tf.square(g)
                step_size = o.lr * (mi / (1 - b1 ** s)) / (tf.sqrt(vi / (1 - b2 ** s)) + eps)
                out_p.append(p - step_size)
                out_m.append(mi)
                out_v.append(vi)
            return i + 1, tuple(out_p), tuple(out_m), tuple(out_v)

        _, params, _, _ = tf.while_loop(lambda i, *_: i <= o.steps, step,
                                        (tf.constant(1), params, zeros, zeros))
        energy, err = self._energy(*params, start, K, keypoints)
        return params, err, energy

    def fit(self, K, keypoints, rotmats, betas, transl):
        """K (B,3,3) crop intrinsics, keypoints (B,N,3) crop pixels + weight in [0, 1],
        start (B,J,3,3), (B,S), (B,3) -> dict rotmats, betas, transl, the body outputs
        (vertices, joints, h36m17, coco17, ...), reprojection_error (B,) crop pixels
        (visibility-weighted mean) and its value at the start, reverted (B,) bool.
        Keypoints with a non-finite coordinate count as invisible."""
        K, keypoints = tf.cast(K, tf.float32), tf.cast(keypoints, tf.float32)
        usable = tf.reduce_all(tf.math.is_finite(keypoints), axis=-1, keepdims=True)
        keypoints = tf.where(usable, keypoints, 0.0)   # a non-finite keypoint is no keypoint
        rot0, b0, t0 = (tf.cast(x, tf.float32) for x in (rotmats, betas, transl))
        (d, b, t), err, energy = self._fit(K, keypoints, rot0, b0, t0)
        rot = tf.matmul(rot0, geometry.axis_angle_to_matrix(d))
        if self.opt.try_flip:  # SMPLify's second start: the body turned 180 deg about the
            turn = tf.constant([[-1.0, 0, 0], [0, 1, 0], [0, 0, -1]])  # camera's vertical
            rot0_f = tf.concat([tf.matmul(turn, rot0[:, :1]), rot0[:, 1:]], axis=1)
            (d_f, b_f, t_f), err_f, energy_f = self._fit(K, keypoints, rot0_f, b0, t0)
            better = energy_f < energy
            rot = tf.where(better[:, None, None, None],
                           tf.matmul(rot0_f, geometry.axis_angle_to_matrix(d_f)), rot)
            b, t = tf.where(better[:, None], b_f, b), tf.where(better[:, None], t_f, t)
            err = tf.where(better, err_f, err)
        _, err0 = _reprojection(self.body(b0, rot0, t0)[self.set], K, keypoints, self.size,
                                self.opt.sigma)
        ok = tf.reduce_all(tf.math.is_finite(tf.reshape(rot, [tf.shape(rot)[0], -1])), -1)
        ok &= tf.reduce_all(tf.math.is_finite(b), -1) & tf.reduce_all(tf.math.is_finite(t), -1)
        ok &= tf.math.is_finite(err)
        rot = tf.where(ok[:, None, None, None], rot, rot0)
        b, t = tf.where(ok[:, None], b, b0), tf.where(ok[:, None], t, t0)
        out = {k: v for k, v in self.body(b, rot, t).items()}
        out.update(rotmats=rot, betas=b, transl=t, reverted=~ok,
                   reprojection_error=tf.where(ok, err, err0), start_error=err0)
        return out
