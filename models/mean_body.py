"""The mean body in the camera frame: upright (head towards -y), facing the camera (-z).

Two places need it: THUNDR's starting markers M_0 (models/thundr.py places this body in front of
each crop's camera) and the MarkerPoser (its output starts at this pose, and its synthetic training
bodies are rotated relative to it). The body model's own rest frame is not part of the contract
(SMPL's is y up, facing +z; Anny-derived models may differ), so the orientation is derived from the
rest pose itself: up = head - pelvis and left = left hip - right hip of the H36M-17 keypoints.
"""
import numpy as np
import tensorflow as tf

from pose_era import geometry
from pose_era.constants import H36M17_NAMES

_PELVIS, _RHIP, _LHIP, _HEAD = (H36M17_NAMES.index(n) for n in
                                ("pelvis", "right_hip", "left_hip", "head"))


def _rest(body_model, root):
    """Body-model outputs (numpy, batch 1) for mean shape, identity local rotations, given root."""
    rot = np.tile(np.eye(3, dtype=np.float32), (1, body_model.num_joints, 1, 1))
    rot[0, 0] = root
    out = body_model(tf.zeros((1, body_model.num_betas), tf.float32), tf.constant(rot),
                     tf.zeros((1, 3), tf.float32))
    return {k: np.asarray(v)[0] for k, v in out.items()}


def upright_rotation(body_model):
    """(3,3) root rotation turning the rest body upright and facing the camera (x right, y down)."""
    kp = _rest(body_model, np.eye(3, dtype=np.float32))["h36m17"].astype(np.float64)
    up = kp[_HEAD] - kp[_PELVIS]
    left = kp[_LHIP] - kp[_RHIP]
    up /= np.linalg.norm(up)
    left -= up * (left @ up)
    left /= np.linalg.norm(left)
    front = np.cross(left, up)
    source = np.stack([left, up, front], axis=1)               # columns: body axes, model frame
    # Facing the camera: front -> -z, up -> -y, hence the person's left -> +x (image right).
    target = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]]).T
    return (target @ source.T).astype(np.float32)


def mean_body(body_model):
    """The upright mean body, centred on its bounding box.

    Returns dict: root (3,3) root rotation, markers (K,3) centred on the mesh's bounding-box centre,
    extent (2,) the mesh's x/y size in metres, transl_offset (3,) the body-model translation that
    puts the bounding-box centre at the origin (the MarkerPoser's initial translation relative to
    the markers' centroid is transl_offset - mean(markers)), root_joint (3,) the root joint, about
    which the root rotation turns the body (unmoved by it).
    """
    root = upright_rotation(body_model)
    out = _rest(body_model, root)
    lo, hi = out["vertices"].min(0), out["vertices"].max(0)
    centre = (lo + hi) / 2
    return {"root": root, "markers": (out["markers"] - centre).astype(np.float32),
            "extent": (hi - lo)[:2].astype(np.float32), "transl_offset": -centre.astype(np.float32),
            "root_joint": out["joints"][0].astype(np.float32)}


def rot6d_of(rotmat):
    """6D representation (numpy) of one (3,3) rotation, in geometry's convention."""
    return np.asarray(geometry.matrix_to_rot6d(tf.constant(rotmat[None], tf.float32)))[0]
