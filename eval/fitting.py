"""Fitting the body model to 2D keypoints, starting from the network's estimate (SMPLify/SPIN).

Why: a network trained on synthetic bodies is a rough start on a real photo, while BlazePose's
2D keypoints are accurate; SPIN (Kolotouros et al., 2019) refines the regressed body against
2D keypoints with SMPLify's objective (Bogo et al., 2016). Here, per sample, with the crop's
full-perspective camera K and COCO-17 keypoints in crop pixels:

  E = robust reprojection  sum_k w_k rho(|pi(K X_k) - x_k| / S) / sum_k w_k
      + depth_near * mean_k (z_k - z0_k)^2  (z: depth relative to the mid-hip, metres)
      + pose_near  * sum_j |d_j|^2       (d_j: axis-angle change of joint j from the start)
      + shape_near * |b - b0|^2 + shape_prior * |b|^2 / S_b
      + transl_near * |t - t0|^2         (depth is barely seen in 2D: stay near the network)
      + joint_limit * sum_{j>0} relu((1 - cos a_j) - (1 - cos limit))^2  (a_j: joint angle)
      + world * sum_b v_b (1 - cos(bone b, its direction in BlazePose's 3D)) / sum_b v_b
      + outside * sum_{k outside the photo} relu(how far X_k projects inside it / S + margin)^2

with rho the Geman-McClure function sigma^2 e^2 / (sigma^2 + e^2) (SMPLify's robustifier; e in
fractions of the crop side S, so weights do not depend on resolution), w_k the keypoints'
visibility. Rotations are R_j = R0_j exp(d_j), so the start is exactly d = 0.

Why the depth term: 2D keypoints fix where each joint projects, not how far it is along its ray,
and with only the weak pose prior the fit bent limbs in depth to meet the pixels (on rendered
scenes it made PA-MPJPE worse than the network's: 119.3 -> 121.9 mm). Keeping the joints'
depths relative to the mid-hip at the network's lets the pixels move each joint across its ray
only (docs/eval_demo.md has the measurements behind every default).

A photo may cut the person (a portrait, a body cut at the hips): a keypoint that lies outside
the photo (`frame`), or that the detector says is not in it (`absent`), is not fitted, neither
is its 3D landmark; the limb joint that swings it (and, for a keypoint that may be beyond
the photo, `unsure`, though it is still fitted with its weight)
starts from a natural pose (`natural_pose`: legs straight, arms hanging at the sides; a pose
rather than whatever the network guessed for a body part it did not see), and the `outside`
term keeps a keypoint beyond the side(s) of the photo it lies beyond.

Two stages as in SMPLify: first the global orientation and translation only, then everything.
Adam, a fixed number of steps (bounded time) in one tf.function, from the start and, with
`try_flip`, also (as SMPLify does) from the start turned 180 degrees about the camera's
vertical axis, keeping the lower energy (2D keypoints cannot tell a person's front from their
back; the world term can, and with it the second start changed nothing measurable, so it is
off); every sample is independent (the loss is a sum over the batch and Adam is elementwise).
A sample whose result is not finite gets its start back, so the outputs are always finite.
"""
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from pose_era import constants, geometry
from pose_era.body.anatomy import Anatomy

# COCO-17 bones whose directions the world term compares: upper and lower arms and legs, the
# shoulder and hip lines, and each side of the torso.
_C = constants.COCO17_NAMES.index
BONES = tuple((_C(f"{side}_{a}"), _C(f"{side}_{b}")) for side in ("left", "right")
              for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"),
                           ("knee", "ankle"), ("hip", "shoulder"))) + (
    (_C("left_shoulder"), _C("right_shoulder")), (_C("left_hip"), _C("right_hip")))
LIMB_ENDS = tuple(_C(f"{side}_{part}") for side in ("left", "right")
                  for part in ("elbow", "wrist", "knee", "ankle"))
HIPS = (_C("left_hip"), _C("right_hip"))
NOWHERE = 1e9   # a frame this large leaves no keypoint outside it


@dataclass(frozen=True)
class FitOptions:
    """Weights and schedule of the fit (defaults measured on rendered scenes, docs/eval_demo.md)."""
    steps: int = 100
    global_steps: int = 25       # of which first: root orientation + translation only
    lr: float = 0.02
    sigma: float = 0.1           # Geman-McClure scale, fraction of the crop side
    depth_near: float = 1e-2
    pose_near: float = 1e-4
    shape_near: float = 1e-4
    shape_prior: float = 1e-4
    transl_near: float = 1e-3
    joint_limit: float = 1.0
    limit_deg: float = 110.0
    world: float = 1e-3          # bone directions of BlazePose's 3D world landmarks
    outside: float = 1.0         # keypoints outside the photo stay outside it
    outside_margin: float = 0.01  # by this fraction of the crop side
    try_flip: bool = False       # also start turned 180 degrees, keep the lower energy (no
                                 # gain measured with the depth and world terms; twice the time)


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


def _inside(uv, frame):
    """(B, N, 4) how far points uv (B, N, 2) lie on the inner side of each side (left, right,
    top, bottom) of the rectangles frame (B, 4) x0 y0 x1 y1; negative beyond that side."""
    f = frame[:, None]
    return tf.stack([uv[..., 0] - f[..., 0], f[..., 2] - uv[..., 0],
                     uv[..., 1] - f[..., 1], f[..., 3] - uv[..., 1]], -1)


def _bone_directions(points):
    """(B, 17, 3) COCO-17 -> (B, len(BONES), 3) unit vectors."""
    a, b = (tf.gather(points, [bone[i] for bone in BONES], axis=1) for i in (0, 1))
    return tf.math.l2_normalize(b - a, axis=-1, epsilon=1e-9)


def _world_term(points, world):
    """Per-sample mean of (1 - cos) between the body's and world's bone directions, weighted by
    the lower weight of each bone's two ends: points (B,17,3), world (B,17,4)."""
    w = tf.reduce_min(tf.gather(world[..., 3], BONES, axis=1), axis=-1)
    cos = tf.reduce_sum(_bone_directions(points) * _bone_directions(world[..., :3]), -1)
    return tf.reduce_sum(w * (1.0 - cos), -1) / tf.maximum(tf.reduce_sum(w, -1), 1e-6)


def _relative_depth(points):
    """(B, 17) depth of COCO-17 points (B, 17, 3) relative to their mid-hip."""
    return points[..., 2] - tf.reduce_mean(tf.gather(points[..., 2], HIPS, axis=1), -1,
                                           keepdims=True)


def _usable(points):
    """float32 points whose rows with a non-finite number become zeros (weight 0: unused)."""
    points = tf.cast(points, tf.float32)
    return tf.where(tf.reduce_all(tf.math.is_finite(points), axis=-1, keepdims=True), points,
                    0.0)


def limb_drivers(body):
    """(17,) for each COCO-17 keypoint the body joint whose rotation swings it (the parent of the
    joint nearest to it in the rest pose: the hip for the knee, the knee for the ankle, ...),
    -1 for keypoints that end no limb (face, shoulders, hips)."""
    rest = body(tf.zeros((1, body.num_betas)), tf.eye(3, batch_shape=[1, body.num_joints]),
                tf.zeros((1, 3)))
    joints, points = rest["joints"].numpy()[0], rest["coco17"].numpy()[0]
    nearest = np.linalg.norm(points[:, None] - joints[None], axis=-1).argmin(1)
    drivers = np.asarray(body.parents)[nearest]
    return np.where(np.isin(np.arange(len(points)), LIMB_ENDS), drivers, -1)


def _anatomy(body):
    rest = body.rest_joints(np.zeros((1, body.num_betas), np.float32))[0].numpy()
    return Anatomy(body.joint_names, body.parents, rest)


def limb_resets(body):
    """(17, J) bool: the joints that start in the natural pose when keypoint k is not in the
    photo: its limb driver, and above it the joints between the limb and the torso (clavicles,
    Anny's fixed hip joints), whose network guesses for an unseen limb raised Grace Hopper's
    arm 40 degrees and spread her legs 30."""
    drivers, anatomy = limb_drivers(body), _anatomy(body)
    out = drivers[:, None] == np.arange(body.num_joints)[None]
    for k, j in enumerate(drivers):
        parent = anatomy.parents[j] if j >= 0 else -1
        while parent >= 0 and anatomy.classes[parent] in ("clavicle", "fixed"):
            out[k, parent] = True
            parent = anatomy.parents[parent]
    return out


def natural_pose(body):
    """(J, 3, 3) local rotations of a relaxed standing pose (pose_era.body.anatomy: the arms
    hanging at the sides, everything else as in the rest pose), the start of limbs a photo does
    not show. Not the rest pose itself: Anny rests in an A-pose with the hands forward, SMPL in
    a T-pose."""
    return _anatomy(body).neutral.astype(np.float32)


class Fitter:
    """fit(K, keypoints, rotmats, betas, transl[, world, frame, absent]) of one body model."""

    def __init__(self, body, image_size, options=FitOptions()):
        self.body = body
        self.size = float(image_size)
        self.opt = options
        # (17, J): keypoint k, when outside the photo, puts joint j in the natural pose
        self.resets = tf.constant(limb_resets(body), tf.float32)
        self.natural = tf.constant(natural_pose(body), tf.float32)
        self._fit = tf.function(self._run, reduce_retracing=True)

    def _energy(self, d, b, t, start, seen):
        rot0, b0, t0, z0 = start
        K, keypoints, world, beyond, frame = seen
        o = self.opt
        rot = tf.matmul(rot0, geometry.axis_angle_to_matrix(d))
        points = self.body(b, rot, t)["coco17"]
        data, err = _reprojection(points, K, keypoints, self.size, o.sigma)
        cos = (tf.linalg.trace(rot[:, 1:]) - 1.0) / 2.0
        limit = 1.0 - tf.cos(o.limit_deg * np.pi / 180.0)
        over = tf.nn.relu((1.0 - cos) - limit)
        inside = _inside(geometry.project(points, K), frame) / self.size + o.outside_margin
        prior = (o.depth_near * tf.reduce_mean(tf.square(_relative_depth(points) - z0), -1)
                 + o.pose_near * tf.reduce_sum(tf.square(d[:, 1:]), [1, 2])
                 + o.shape_near * tf.reduce_sum(tf.square(b - b0), -1)
                 + o.shape_prior * tf.reduce_mean(tf.square(b), -1)
                 + o.transl_near * tf.reduce_sum(tf.square(t - t0), -1)
                 + o.joint_limit * tf.reduce_sum(tf.square(over), -1)
                 + o.world * _world_term(points, world)
                 + o.outside * tf.reduce_sum(beyond * tf.square(tf.nn.relu(inside)), [1, 2]))
        return data + prior, err

    def _run(self, seen, rot0, b0, t0):
        o = self.opt
        start = (rot0, b0, t0, _relative_depth(self.body(b0, rot0, t0)["coco17"]))
        params = (tf.zeros_like(rot0[..., 0]), tf.identity(b0), tf.identity(t0))
        zeros = tuple(tf.zeros_like(p) for p in params)
        root_only = tf.concat([tf.ones_like(params[0][:, :1]),
                               tf.zeros_like(params[0][:, 1:])], axis=1)
        global_mask = (root_only, tf.zeros_like(b0), tf.ones_like(t0))
        b1, b2, eps = 0.9, 0.999, 1e-8

        def step(i, params, m, v):
            with tf.GradientTape() as tape:
                tape.watch(params)
                energy, _ = self._energy(*params, start, seen)
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
        energy, err = self._energy(*params, start, seen)
        return params, err, energy

    def fit(self, K, keypoints, rotmats, betas, transl, world=None, frame=None, absent=None,
            unsure=None):
        """K (B,3,3) crop intrinsics, keypoints (B,17,3) COCO-17 crop pixels + weight in
        [0, 1], start (B,J,3,3), (B,S), (B,3); optional world (B,17,4) COCO-17 3D keypoints in
        the camera's axes (any origin and scale: only bone directions count) + weight, and
        frame (B,4) the photo's rectangle x0, y0, x1, y1 in crop pixels (keypoints outside it
        are kept outside, not fitted), absent (B,17) bool keypoints known not to be in the
        photo wherever they were drawn (not fitted, their limbs start at rest), unsure (B,17)
        bool keypoints that may lie beyond the photo (still fitted with their weight, but
        their limbs start at rest too: a guess the keypoint barely constrains) -> dict
        rotmats, betas, transl, the body outputs (vertices, joints, h36m17, coco17, ...),
        reprojection_error (B,) crop pixels (visibility-weighted mean) and its value at the
        (network's) start, reverted (B,) bool. Keypoints with a non-finite coordinate count as
        invisible."""
        K, keypoints = tf.cast(K, tf.float32), _usable(keypoints)
        world = tf.zeros(tf.concat([tf.shape(keypoints)[:-1], [4]], 0)) if world is None \
            else _usable(world)
        frame = tf.tile([[-NOWHERE, -NOWHERE, NOWHERE, NOWHERE]], [tf.shape(keypoints)[0], 1]) \
            if frame is None else tf.cast(frame, tf.float32)
        beyond = tf.cast((_inside(keypoints[..., :2], frame) < 0)
                         & tf.reduce_any(keypoints != 0, -1, keepdims=True), tf.float32)
        outside = tf.reduce_max(beyond, -1)
        if absent is not None:
            outside = tf.maximum(outside, tf.cast(absent, tf.float32))
        keypoints = tf.concat([keypoints[..., :2], keypoints[..., 2:] * (1 - outside[..., None])],
                              -1)
        world = tf.concat([world[..., :3], world[..., 3:] * (1 - outside[..., None])], -1)
        seen = (K, keypoints, world, beyond, frame)
        rot_in, b0, t0 = (tf.cast(x, tf.float32) for x in (rotmats, betas, transl))
        restart = outside if unsure is None else tf.maximum(outside, tf.cast(unsure, tf.float32))
        rest = tf.minimum(tf.matmul(restart, self.resets), 1.0)[..., None, None]   # (B, J)
        rot0 = rest * self.natural + (1 - rest) * rot_in
        (d, b, t), err, energy = self._fit(seen, rot0, b0, t0)
        rot = tf.matmul(rot0, geometry.axis_angle_to_matrix(d))
        if self.opt.try_flip:  # SMPLify's second start: the body turned 180 deg about the
            turn = tf.constant([[-1.0, 0, 0], [0, 1, 0], [0, 0, -1]])  # camera's vertical
            rot0_f = tf.concat([tf.matmul(turn, rot0[:, :1]), rot0[:, 1:]], axis=1)
            (d_f, b_f, t_f), err_f, energy_f = self._fit(seen, rot0_f, b0, t0)
            better = energy_f < energy
            rot = tf.where(better[:, None, None, None],
                           tf.matmul(rot0_f, geometry.axis_angle_to_matrix(d_f)), rot)
            b, t = tf.where(better[:, None], b_f, b), tf.where(better[:, None], t_f, t)
            err = tf.where(better, err_f, err)
        _, err0 = _reprojection(self.body(b0, rot_in, t0)["coco17"], K, keypoints, self.size,
                                self.opt.sigma)
        ok = tf.reduce_all(tf.math.is_finite(tf.reshape(rot, [tf.shape(rot)[0], -1])), -1)
        ok &= tf.reduce_all(tf.math.is_finite(b), -1) & tf.reduce_all(tf.math.is_finite(t), -1)
        ok &= tf.math.is_finite(err)
        rot = tf.where(ok[:, None, None, None], rot, rot_in)
        b, t = tf.where(ok[:, None], b, b0), tf.where(ok[:, None], t, t0)
        out = {k: v for k, v in self.body(b, rot, t).items()}
        out.update(rotmats=rot, betas=b, transl=t, reverted=~ok,
                   reprojection_error=tf.where(ok, err, err0), start_error=err0)
        return out
