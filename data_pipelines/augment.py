"""Training augmentation of schema examples: scale, in-plane rotation, horizontal flip, colour.

Every geometric change is one 3x3 pixel map A of the crop (about its centre: flip, then
rotation by theta, then magnification s) together with the matching camera-frame map
Q = R_z(theta) M (M = diag(-1, 1, 1) when flipped, else I). Labels follow exactly:
  image  warped by A (one bilinear resample, black outside),
  kp2d   A applied to (u, v), then the COCO-17 left/right swap when flipped,
  j3d    Q X, then the H36M-17 left/right swap when flipped,
  markers Q X, then the body model's marker mirror permutation when flipped,
  K      A K Q^T, so that projecting the new 3D with the new K gives the new 2D for any
         point: A K X = (A K Q^T)(Q X). With fx = fy (and no skew) K stays a pinhole matrix
         (focal s*f, principal point moved by A); with fx != fy under rotation it becomes a
         general 3x3 projection matrix, still exact for geometry.project.
Body parameters: a flip mirrors every joint rotation ((x, y, z) axis-angle -> (x, -y, -z)) and
swaps left/right joints with the body model's joint mirror permutation; the root rotation
becomes R_z(theta) R_root; the translation t' = Q (t + j0) - j0, where j0 is the root joint of
the shaped body in its rest pose (the root rotates about it). Without a joint mirror
permutation a flipped example gets has_params = 0, and without j0 (`rest_root`) so does every
flipped or rotated one; without a marker mirror permutation a flipped example gets
has_markers = 0. Magnification alone changes only the image, kp2d and K.
Colour: per-channel gain, contrast and saturation, each drawn in [1 - c, 1 + c], clipped to
[0, 1] (SPIN uses the per-channel gain with c = 0.4).
Randomness is stateless: each example gets its own (2,) seed, so a run is reproducible.
"""
import dataclasses
import math

import tensorflow as tf

from data_pipelines.images import map_keypoints, warp
from pose_era import constants
from pose_era import geometry

# Axis-angle under the x-mirror. Plain numbers, not a tensor: a tensor made at import would
# start TensorFlow's runtime in every process that imports the data layer, and the synthetic
# writer's spawned workers (which re-import the main module, e.g. eval.h36m) could no longer
# set their thread counts.
_MIRROR_AA = (1.0, -1.0, -1.0)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Ranges: magnification in [1 - scale, 1 + scale]; with probability rotation_prob an
    angle uniform in [-rotation, rotation] degrees; flip with flip_prob; colour strength c."""
    scale: float = 0.25
    rotation: float = 30.0
    rotation_prob: float = 0.4
    flip_prob: float = 0.5
    color: float = 0.4

    @classmethod
    def from_config(cls, section):
        """From a ConfigDict/dict with any of the fields (others keep their defaults)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: float(v) for k, v in dict(section).items() if k in fields})


@dataclasses.dataclass(frozen=True)
class Symmetry:
    """What a flip needs from the body model: mirror permutations and the rest root joint.

    marker_flip (K,) and joint_flip (J,): flipped[i] = original[perm[i]].
    rest_root: callable betas (B, S) -> (B, 3), the root joint of the shaped rest body.
    """
    marker_flip: tuple = None
    joint_flip: tuple = None
    rest_root: object = None

    @classmethod
    def from_body_model(cls, body):
        """From a pose_era.body.BodyModel (its marker_flip / joint_flip arrays if present)."""
        def perm(p):
            return None if p is None else tuple(int(i) for i in p)
        return cls(perm(body.marker_flip), perm(body.joint_flip),
                   lambda betas: body.rest_joints(betas)[:, 0])


def sample(seed, cfg):
    """Random parameters for one example: dict(scale, angle (radians), flip (bool), colour)."""
    u = tf.random.stateless_uniform([10], seed)
    rotate = u[1] < cfg.rotation_prob
    angle = tf.where(rotate, (2.0 * u[2] - 1.0) * math.radians(cfg.rotation), 0.0)
    return {
        "scale": 1.0 + (2.0 * u[0] - 1.0) * cfg.scale,
        "angle": angle,
        "flip": u[3] < cfg.flip_prob,
        "gain": 1.0 + (2.0 * u[4:7] - 1.0) * cfg.color,
        "contrast": 1.0 + (2.0 * u[7] - 1.0) * cfg.color,
        "saturation": 1.0 + (2.0 * u[8] - 1.0) * cfg.color,
    }


def transforms(scale, angle, flip, size):
    """(A, Q): the crop's pixel map and the camera-frame map of one geometric augmentation."""
    c, s = tf.cos(angle), tf.sin(angle)
    f = tf.where(flip, -1.0, 1.0)
    zero, one = tf.zeros_like(c), tf.ones_like(c)
    rot = tf.reshape(tf.stack([c, -s, zero, s, c, zero, zero, zero, one]), [3, 3])
    mirror = tf.linalg.diag(tf.stack([f, one, one]))
    q = rot @ mirror
    half = size / 2.0
    to_centre = tf.constant([[1.0, 0.0, -half], [0.0, 1.0, -half], [0.0, 0.0, 1.0]])
    back = tf.constant([[1.0, 0.0, half], [0.0, 1.0, half], [0.0, 0.0, 1.0]])
    magnify = tf.linalg.diag(tf.stack([scale, scale, one]))
    a = back @ magnify @ q @ to_centre  # q's top-left 2x2 is the pixel-plane rotation/flip
    return a, q


def _swap(x, perm, flip):
    return tf.where(flip, tf.gather(x, perm), x) if perm is not None else x


def apply_geometry(example, a, q, flip, angle, symmetry=Symmetry()):
    """The labels and image of `example` under pixel map `a` and camera map `q` (see top)."""
    out = dict(example)
    size = example["image"].shape[0]
    out["image"] = warp(example["image"], a, size)
    out["K"] = a @ tf.cast(example["K"], tf.float32) @ tf.transpose(q)
    out["kp2d"] = _swap(map_keypoints(example["kp2d"], a), constants.COCO17_FLIP_PERM, flip)
    out["j3d"] = _swap(example["j3d"] @ tf.transpose(q), constants.H36M17_FLIP_PERM, flip)
    out["markers"] = _swap(example["markers"] @ tf.transpose(q), symmetry.marker_flip, flip)
    if symmetry.marker_flip is None:
        out["has_markers"] = example["has_markers"] * (1.0 - tf.cast(flip, tf.float32))
    out.update(_params(example, q, flip, angle, symmetry))
    return out


def _params(example, q, flip, angle, symmetry):
    pose = example["pose"]
    if symmetry.joint_flip is not None:
        pose = tf.where(flip, tf.gather(pose, symmetry.joint_flip) * _MIRROR_AA, pose)
    moved = tf.logical_or(flip, tf.not_equal(angle, 0.0))
    rot = q @ tf.linalg.diag(tf.stack([tf.where(flip, -1.0, 1.0), 1.0, 1.0]))  # R_z alone
    root = geometry.matrix_to_axis_angle(rot @ geometry.axis_angle_to_matrix(pose[0]))
    pose = tf.concat([tf.where(moved, root, pose[0])[None], pose[1:]], axis=0)
    ok = tf.constant(1.0)
    if symmetry.joint_flip is None:
        ok = ok * (1.0 - tf.cast(flip, tf.float32))
    if symmetry.rest_root is None:
        ok = ok * (1.0 - tf.cast(moved, tf.float32))
        transl = example["transl"]
    else:
        j0 = tf.reshape(symmetry.rest_root(example["betas"][None]), [3])
        transl = tf.linalg.matvec(q, example["transl"] + j0) - j0
    return {"pose": pose, "transl": transl, "has_params": example["has_params"] * ok}


def color(image, params):
    """Per-channel gain, then contrast about the image's mean grey, then saturation about
    each pixel's grey: together one affine colour map x -> M x + b, applied in one pass."""
    gain, c, s = params["gain"], params["contrast"], params["saturation"]
    mean_grey = tf.reduce_sum(tf.reduce_mean(image, axis=[0, 1]) * gain) / 3.0
    saturate = s * tf.eye(3) + (1.0 - s) / 3.0 * tf.ones([3, 3])
    m = c * saturate * gain[None, :]  # saturate @ (c * diag(gain))
    b = (1.0 - c) * mean_grey  # saturation keeps a grey offset unchanged
    return tf.clip_by_value(tf.einsum("hwc,dc->hwd", image, m) + b, 0.0, 1.0)


def augment(example, seed, cfg=AugmentConfig(), symmetry=Symmetry()):
    """One random augmentation of a schema example (seed: (2,) int)."""
    params = sample(seed, cfg)
    size = example["image"].shape[0]
    a, q = transforms(params["scale"], params["angle"], params["flip"], size)
    out = apply_geometry(example, a, q, params["flip"], params["angle"], symmetry)
    out["image"] = color(out["image"], params)
    return out
