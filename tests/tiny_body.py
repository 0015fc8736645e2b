"""A tiny stick-figure body model (arrays dict for pose_era.body.BodyModel) for fast network tests.

17 joints in an SMPL-like rest frame (y up, facing +z, the person's left at +x), a ring of 4
vertices around every joint (skinned rigidly to that joint) and around every bone's midpoint
(skinned to the bone's parent joint), 4 linear shape directions, H36M-17 and COCO-17 regressors
(ring centroids) and `num_markers` markers spread over the vertices. Small enough that a forward
pass costs nothing.
"""
import numpy as np

from pose_era.body import BodyModel

JOINTS = {  # name: (parent, rest position)
    "pelvis": (-1, (0.0, 1.0, 0.0)), "l_hip": (0, (0.1, 0.95, 0.0)),
    "l_knee": (1, (0.1, 0.5, 0.0)), "l_ankle": (2, (0.1, 0.08, 0.0)),
    "r_hip": (0, (-0.1, 0.95, 0.0)), "r_knee": (4, (-0.1, 0.5, 0.0)),
    "r_ankle": (5, (-0.1, 0.08, 0.0)), "spine": (0, (0.0, 1.25, 0.0)),
    "neck": (7, (0.0, 1.5, 0.0)), "head": (8, (0.0, 1.65, 0.02)),
    "l_shoulder": (8, (0.2, 1.45, 0.0)), "l_elbow": (10, (0.45, 1.45, 0.0)),
    "l_wrist": (11, (0.7, 1.45, 0.0)), "r_shoulder": (8, (-0.2, 1.45, 0.0)),
    "r_elbow": (13, (-0.45, 1.45, 0.0)), "r_wrist": (14, (-0.7, 1.45, 0.0)),
    "head_top": (9, (0.0, 1.8, 0.0)),
}
H36M = ["pelvis", "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle", "spine", "neck",  # SPIN order
        "head", "head_top", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist"]
COCO_BODY = ["l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip",
             "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle"]
_RING = np.array([[0.04, 0, 0], [-0.04, 0, 0], [0, 0, 0.04], [0, 0, -0.04]], np.float64)


def tiny_body_arrays(num_markers=16, seed=0):
    """dict of arrays in the body-model file format (pose_era/body/format.py)."""
    names = list(JOINTS)
    parents = np.array([JOINTS[n][0] for n in names])
    joints = np.array([JOINTS[n][1] for n in names])
    verts, skin, joint_ring = [], [], {}
    for j, name in enumerate(names):
        joint_ring[name] = list(range(len(verts), len(verts) + 4))
        verts += list(joints[j] + _RING)
        skin += [j] * 4
    for j in range(1, len(names)):
        verts += list((joints[j] + joints[parents[j]]) / 2 + _RING)
        skin += [parents[j]] * 4
    verts = np.array(verts)
    v, nj = len(verts), len(names)
    weights = np.zeros((v, nj))
    weights[np.arange(v), skin] = 1.0
    rng = np.random.default_rng(seed)
    # Shape: height, width, depth scaling about the pelvis height line, plus one random direction.
    def dirs(points):
        d = np.zeros(points.shape + (4,))
        d[:, 1, 0] = 0.1 * points[:, 1]
        d[:, 0, 1] = 0.1 * points[:, 0]
        d[:, 2, 2] = 0.1 * points[:, 2] + 0.01
        return d
    shapedirs, jdirs = dirs(verts), dirs(joints)
    rand = rng.normal(0, 0.01, (nj, 3))
    shapedirs[..., 3] = rand[skin]
    jdirs[..., 3] = rand

    def regressor(rows):
        r = np.zeros((len(rows), v))
        for i, ids in enumerate(rows):
            r[i, ids] = 1.0 / len(ids)
        return r

    head = joint_ring["head"]  # +x, -x, +z, -z around the head
    coco_face = [[head[2]], [head[0], head[2]], [head[1], head[2]], [head[0]], [head[1]]]
    coco = coco_face + [joint_ring[n] for n in COCO_BODY]
    markers = np.linspace(0, v - 1, num_markers).round().astype(np.int64)
    return {
        "v_template": verts, "shapedirs": shapedirs, "weights": weights, "parents": parents,
        "faces": np.array([[0, 1, 2], [1, 2, 3]]), "joint_names": np.array(names),
        "markers": markers, "joints_template": joints, "joints_shapedirs": jdirs,
        "h36m17": regressor([joint_ring[n] for n in H36M]), "coco17": regressor(coco),
        "source": "tests/tiny_body.py", "units": "metres",
    }


def tiny_body_model(num_markers=16):
    return BodyModel(tiny_body_arrays(num_markers))
