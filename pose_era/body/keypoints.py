"""Keypoint regressors (17, V) on the Anny mesh: an H36M-17-style set and COCO-17.

Each keypoint is a fixed linear combination of mesh vertices, so it follows any shape and pose
(the same role as SMPL's J_regressor_h36m). Built from two kinds of points:
- skeleton joints (hips, knees, ankles, shoulders, elbows, wrists, pelvis, neck base, skull
  base): a sum-to-one combination of the 300 vertices nearest the joint, fitted by ridge least
  squares to reproduce the joint over random shapes and poses of the model itself (weights may
  be negative: a non-negative fit cannot follow Anny's joints, which sit off-centre in the
  limbs; NNLS left 15-28 mm errors at hips and knees, this fit ~1 mm on held-out poses);
- surface landmarks picked on the mean mesh: nose tip (most forward midline head vertex), head
  top (highest midline vertex), eye (front pole of the eyeball), ear (centre of the most
  lateral head vertices at ear height).
Left-side rows are fitted, right-side rows are their mirror images and midline rows are
symmetrised, so the sets are exactly left/right symmetric. How they differ from the datasets'
own joints is written in docs/body.md.
"""
import numpy as np

from pose_era import constants

# The one home of keypoint orders is pose_era.constants (SPIN's H36M-17 order: left leg
# first; COCO-17 as in the annotation files).
H36M17_NAMES = constants.H36M17_NAMES
COCO17_NAMES = constants.COCO17_NAMES
H36M17_FLIP = np.array(constants.H36M17_FLIP_PERM, np.int64)
COCO17_FLIP = np.array(constants.COCO17_FLIP_PERM, np.int64)

# Keypoint -> {point: weight}; "J:" = skeleton joint, "L:" = surface landmark. Left and midline
# points only: right-side keypoints are mirrored.
_LEFT_LIMB = {"shoulder": "J:LeftArm", "elbow": "J:LeftForeArm", "wrist": "J:LeftHand",
              "hip": "J:LeftUpLeg", "knee": "J:LeftLeg", "ankle": "J:LeftFoot"}
DEFINITIONS = {
    "pelvis": {"J:Hips": 1.0},
    "spine": {"J:Hips": 0.5, "J:Neck": 0.5},
    "thorax": {"J:Neck": 1.0},
    "jaw": {"J:Head": 0.5, "L:nose": 0.5},  # H36M's "neck/nose" slot
    "head": {"L:crown": 1.0},  # H36M's head (top) slot
    "nose": {"L:nose": 1.0},
    "left_eye": {"L:eye": 1.0},
    "left_ear": {"L:ear": 1.0},
    **{f"left_{k}": {v: 1.0} for k, v in _LEFT_LIMB.items()},
}


def _landmarks(mesh, joints):
    """Left/midline surface landmarks on the mean mesh as (V,) weight vectors."""
    v, n = mesh.vertices, len(mesh.vertices)
    centre = (mesh.mirror == np.arange(n)) & mesh.body
    head = mesh.body & (v[:, 1] > joints["Neck"][1])
    mid_head = np.flatnonzero(centre & head)
    nose = mid_head[np.argmax(v[mid_head, 2])]
    crown = mid_head[np.argmax(v[mid_head, 1])]
    eye_parts = [c for c in np.unique(mesh.components[~mesh.body])
                 if np.all(v[mesh.components == c, 0] > 0)]
    if len(eye_parts) != 1:
        raise ValueError("could not find the left eyeball as a separate mesh piece")
    eye = np.flatnonzero(mesh.components == eye_parts[0])
    eye_front = eye[np.argmax(v[eye, 2])]
    band = np.flatnonzero(head & (np.abs(v[:, 1] - 0.5 * (v[nose, 1] + v[eye_front, 1])) < 0.03)
                          & (v[:, 0] > 0))
    tip = band[np.argmax(v[band, 0])]
    ear = band[np.linalg.norm(v[band] - v[tip], axis=1) < 0.02]
    out = {}
    for name, ids in (("nose", [nose]), ("crown", [crown]), ("eye", [eye_front]), ("ear", ear)):
        w = np.zeros(n)
        w[ids] = 1.0 / len(ids)
        out[name] = w
    return out


def _fit_joint(verts, target, ridge=1e-5):
    """Weights w (sum 1) minimising |sum_i w_i v_i - target|^2 + ridge |w|^2 over samples.

    verts (N, M, 3) candidate vertices, target (N, 3); solved through the KKT system.
    """
    m = verts.shape[1]
    a = verts.transpose(0, 2, 1).reshape(-1, m)
    kkt = np.zeros((m + 1, m + 1))
    kkt[:m, :m] = a.T @ a + ridge * np.eye(m)
    kkt[:m, m] = kkt[m, :m] = 1.0
    rhs = np.append(a.T @ target.reshape(-1), 1.0)
    return np.linalg.solve(kkt, rhs)[:m]


def _mirror(mesh, w):
    out = np.zeros_like(w)
    out[mesh.mirror] = w
    return out


def posed_samples(arrays, num, seed, max_angle=1.5):
    """Random shapes (betas ~ N(0,1)) in random poses (per-joint rotations up to max_angle)."""
    import tensorflow as tf
    from pose_era import geometry
    from pose_era.body.model import BodyModel
    body = BodyModel(arrays)
    rng = np.random.default_rng(seed)
    betas = rng.standard_normal((num, body.num_betas)).astype(np.float32)
    axis = rng.standard_normal((num, body.num_joints, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    aa = axis * rng.uniform(0, max_angle, (num, body.num_joints, 1))
    aa[:, 0] = 0.0
    aa[: num // 4, 1:] = 0.0  # a quarter in the rest pose
    rot = geometry.axis_angle_to_matrix(tf.constant(aa, tf.float32))
    out = body(betas, rot, tf.zeros((num, 3)))
    return out["vertices"].numpy().astype(np.float64), out["joints"].numpy().astype(np.float64)


def fit_keypoint_regressors(arrays, mesh, seed=0, num_samples=300, num_candidates=300):
    """{"h36m17": (17,V), "coco17": (17,V)} regressors for the given body-model arrays."""
    names = [str(n) for n in arrays["joint_names"]]
    rest = dict(zip(names, arrays["joints_template"].astype(np.float64)))
    points = {f"L:{k}": w for k, w in _landmarks(mesh, rest).items()}
    verts, joints = posed_samples(arrays, num_samples, seed)
    body_ids = np.flatnonzero(mesh.body)
    needed = {p for d in DEFINITIONS.values() for p in d if p.startswith("J:")}
    for p in sorted(needed):
        j = names.index(p[2:])
        near = np.argsort(np.linalg.norm(mesh.vertices[body_ids] - rest[p[2:]], axis=1))
        cand = body_ids[near[:num_candidates]]
        w = np.zeros(len(mesh.vertices))
        w[cand] = _fit_joint(verts[:, cand], joints[:, j])
        points[p] = w

    def row(name):
        if name.startswith("right_"):
            return _mirror(mesh, row("left_" + name[len("right_"):]))
        w = sum(weight * points[p] for p, weight in DEFINITIONS[name].items())
        if not name.startswith("left_"):  # midline keypoint: make it exactly symmetric
            w = 0.5 * (w + _mirror(mesh, w))
        return w

    return {key: np.stack([row(n) for n in names_]).astype(np.float32)
            for key, names_ in (("h36m17", H36M17_NAMES), ("coco17", COCO17_NAMES))}
