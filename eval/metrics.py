"""MPJPE, PA-MPJPE and MPVPE with SPIN's conventions: per-sample errors in millimetres.

Why one module: every number the project reports (training-time evaluation, `python -m eval.h36m`)
comes from these functions, so tables are comparable with SPIN (nkolot/SPIN `eval.py`) and with
each other. The math is written once in TensorFlow (`tf_*`, graph-safe, input dtype, usable in a
training loop); the NumPy functions (`mpjpe`, `pa_mpjpe`, `mpvpe`) run the same code in float64
and return NumPy arrays.

Conventions (SPIN, followed by most later work):
- joints come in H36M-17 order (the body model's `h36m17` regressor, the schema's `j3d`) or in
  SPIN's J24 ground-truth order; both are reduced to SPIN's 14 LSP-order joints with the maps of
  `pose_era.constants` (H36M_TO_J14, J24_TO_J14);
- MPJPE subtracts the pelvis from prediction and ground truth first. pelvis="spin": the H36M
  pelvis joint (regressed joint 0; J24 "Pelvis (MPII)"), as SPIN and PARE; pelvis="hips": the
  midpoint of the two hips, as VIBE and BEDLAM;
- PA-MPJPE similarity-aligns the 14 joints by Procrustes (`pose_era.geometry.procrustes_align`:
  scale, rotation, translation, never a reflection);
- MPVPE: mean vertex distance after subtracting each mesh's pelvis (align="pelvis", BEDLAM and
  this project's default; VIBE and PARE compare meshes posed without the camera translation,
  which this matches up to the pelvis offset) or with no alignment at all (align="none": raw
  camera-frame vertices, the translation error included).
An error is the mean Euclidean distance over joints (vertices) of one sample; averaging over the
set is left to the caller, so per-action breakdowns come for free.
"""
import numpy as np
import tensorflow as tf

from pose_era import constants
from pose_era.geometry import procrustes_align

LAYOUTS = ("h36m17", "j24")
PELVIS = ("spin", "hips")
VERTEX_ALIGN = ("pelvis", "none")

# Per layout: the 14 LSP-order joints, the pelvis joint, and the two hips.
_LSP14 = {"h36m17": constants.H36M_TO_J14, "j24": constants.J24_TO_J14}
_PELVIS_JOINT = {"h36m17": 0, "j24": constants.J24_NAMES.index("Pelvis (MPII)")}
_HIPS = {"h36m17": (constants.H36M17_NAMES.index("left_hip"),
                    constants.H36M17_NAMES.index("right_hip")),
         "j24": (constants.J24_NAMES.index("Left Hip"), constants.J24_NAMES.index("Right Hip"))}
_SIZES = {"h36m17": 17, "j24": 24}


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}={value!r} is unknown; use one of {', '.join(choices)}")


def check_options(pelvis, vertex_align):
    """ValueError (naming the option) for an unknown pelvis or MPVPE alignment."""
    _check_choice("pelvis", pelvis, PELVIS)
    _check_choice("vertex_align", vertex_align, VERTEX_ALIGN)


def _check_joints(name, joints, layout):
    _check_choice("layout", layout, LAYOUTS)
    shape = joints.shape
    if shape.rank != 3 or shape[-1] != 3 or shape[-2] != _SIZES[layout]:
        raise ValueError(f"{name} must have shape (N, {_SIZES[layout]}, 3) for layout "
                         f"{layout!r}, got {tuple(shape)}")


def _pair(pred, gt):
    pred = tf.convert_to_tensor(pred)
    gt = tf.cast(tf.convert_to_tensor(gt), pred.dtype)
    return pred, gt


def _mean_distance_mm(a, b):
    """(N, P, 3) metres -> (N,) mean Euclidean distance in millimetres."""
    return 1000.0 * tf.reduce_mean(tf.norm(a - b, axis=-1), axis=-1)


def tf_pelvis_of(joints, pelvis="spin", layout="h36m17"):
    """(N, J, 3) joints -> (N, 1, 3) pelvis: joint 0 of H36M ("spin") or the hips' midpoint."""
    joints = tf.convert_to_tensor(joints)
    _check_choice("pelvis", pelvis, PELVIS)
    _check_joints("joints", joints, layout)
    if pelvis == "spin":
        return joints[:, _PELVIS_JOINT[layout]][:, None]
    left, right = _HIPS[layout]
    return 0.5 * (joints[:, left] + joints[:, right])[:, None]


def tf_lsp14(joints, layout="h36m17"):
    """(N, J, 3) joints in `layout` order -> (N, 14, 3) in SPIN's LSP order."""
    joints = tf.convert_to_tensor(joints)
    _check_joints("joints", joints, layout)
    return tf.gather(joints, _LSP14[layout], axis=1)


def tf_mpjpe(pred, gt, pelvis="spin", layout="h36m17", gt_layout=None):
    """Per-sample MPJPE (N,) in mm over the 14 LSP joints, each skeleton minus its pelvis.

    pred, gt (N, J, 3) metres; gt_layout (default: layout) lets SPIN's J24 ground truth be
    compared with an H36M-17 prediction.
    """
    pred, gt = _pair(pred, gt)
    gt_layout = gt_layout or layout
    p = tf_lsp14(pred, layout) - tf_pelvis_of(pred, pelvis, layout)
    g = tf_lsp14(gt, gt_layout) - tf_pelvis_of(gt, pelvis, gt_layout)
    return _mean_distance_mm(p, g)


def tf_pa_mpjpe(pred, gt, layout="h36m17", gt_layout=None):
    """Per-sample PA-MPJPE (N,) in mm: the 14 LSP joints after Procrustes alignment to gt."""
    pred, gt = _pair(pred, gt)
    p = tf_lsp14(pred, layout)
    g = tf_lsp14(gt, gt_layout or layout)
    return _mean_distance_mm(procrustes_align(p, g), g)


def tf_mpvpe(pred_verts, gt_verts, align="pelvis", pred_pelvis=None, gt_pelvis=None):
    """Per-sample MPVPE (N,) in mm. pred_verts, gt_verts (N, V, 3) metres.

    align="pelvis" subtracts pred_pelvis / gt_pelvis ((N, 3) or (N, 1, 3), e.g. `tf_pelvis_of`
    of each mesh's joints) from the vertices; align="none" compares them as given.
    """
    _check_choice("align", align, VERTEX_ALIGN)
    pred, gt = _pair(pred_verts, gt_verts)
    if pred.shape.rank != 3 or pred.shape[-1] != 3 or pred.shape[1:] != gt.shape[1:]:
        raise ValueError(f"vertices must both have shape (N, V, 3), got {tuple(pred.shape)} "
                         f"and {tuple(gt.shape)}")
    if align == "pelvis":
        if pred_pelvis is None or gt_pelvis is None:
            raise ValueError("mpvpe(align='pelvis') needs pred_pelvis and gt_pelvis; pass them "
                             "or use align='none'")
        pred = pred - tf.reshape(tf.cast(pred_pelvis, pred.dtype), [-1, 1, 3])
        gt = gt - tf.reshape(tf.cast(gt_pelvis, gt.dtype), [-1, 1, 3])
    return _mean_distance_mm(pred, gt)


def _f64(array):
    return None if array is None else tf.constant(np.asarray(array, np.float64))


def pelvis_of(joints, pelvis="spin", layout="h36m17"):
    """NumPy `tf_pelvis_of`: (N, J, 3) -> (N, 1, 3) float64."""
    return tf_pelvis_of(_f64(joints), pelvis, layout).numpy()


def mpjpe(pred, gt, pelvis="spin", layout="h36m17", gt_layout=None):
    """NumPy `tf_mpjpe`: (N, J, 3) metres -> (N,) mm, float64."""
    return tf_mpjpe(_f64(pred), _f64(gt), pelvis, layout, gt_layout).numpy()


def pa_mpjpe(pred, gt, layout="h36m17", gt_layout=None):
    """NumPy `tf_pa_mpjpe`: (N, J, 3) metres -> (N,) mm, float64."""
    return tf_pa_mpjpe(_f64(pred), _f64(gt), layout, gt_layout).numpy()


def mpvpe(pred_verts, gt_verts, align="pelvis", pred_pelvis=None, gt_pelvis=None):
    """NumPy `tf_mpvpe`: (N, V, 3) metres -> (N,) mm, float64."""
    return tf_mpvpe(_f64(pred_verts), _f64(gt_verts), align, _f64(pred_pelvis),
                    _f64(gt_pelvis)).numpy()
