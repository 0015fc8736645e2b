"""The TensorFlow body model: linear blend skinning of a body-model file (see `format.py`).

SMPL's forward, written once for every body model the project reads:
  v_shaped = v_template + shapedirs . betas,   J = joints(betas) (regressor or linear in betas)
  v_posed  = v_shaped + posedirs . (R[1:] - I)                      (only when posedirs exist)
  G_j      = G_parent(j) [R_j | J_j - J_parent(j)],  G_0 = [R_0 | J_0]
  v        = sum_j w_vj (G_j [I | -J_j]) v_posed + transl
rotmats[:, 0] is the global orientation (about the root joint J_0); rotmats[:, j > 0] rotate
joint j relative to its parent, in the axes of the model's rest frame. Markers and keypoints
are fixed linear regressors of the posed vertices. Batched, float32, differentiable.
"""
import numpy as np
import tensorflow as tf

from pose_era import geometry
from pose_era.body import format as body_format


def _depth_levels(parents):
    """Joints grouped by depth in the tree, so each level is one batched matmul."""
    depth = np.zeros(len(parents), np.int64)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return [np.flatnonzero(depth == d) for d in range(depth.max() + 1)]


def _sparse_rows(matrix):
    """A (R, V) regressor as (R, M) vertex ids + weights, M = most non-zeros in a row."""
    matrix = np.asarray(matrix, np.float32)
    width = max(1, int((matrix != 0).sum(axis=1).max()))
    ids = np.zeros((len(matrix), width), np.int64)
    weights = np.zeros((len(matrix), width), np.float32)
    for r, row in enumerate(matrix):
        nz = np.flatnonzero(row)
        ids[r, :len(nz)], weights[r, :len(nz)] = nz, row[nz]
    return ids, weights


class BodyModel:
    """Body-model arrays -> a callable `body(betas, rotmats, transl) -> dict of tensors`."""

    def __init__(self, arrays):
        a = body_format.validate(arrays)
        self.arrays = a
        self.num_vertices = a["v_template"].shape[0]
        self.num_joints = a["parents"].shape[0]
        self.num_betas = a["shapedirs"].shape[-1]
        self.faces = a["faces"]
        self.parents = a["parents"]
        self.joint_names = [str(n) for n in a["joint_names"]]
        self.mean_betas = np.zeros(self.num_betas, np.float32)
        self.joint_flip = a.get("joint_flip")
        self.marker_flip = a.get("marker_flip")
        self.metadata = {k: str(a[k]) for k in body_format.METADATA_KEYS if k in a}
        markers = a["markers"]
        if markers.ndim == 1:  # vertex ids -> one-hot regressor rows
            ids = markers
            markers = np.zeros((len(ids), self.num_vertices), np.float32)
            markers[np.arange(len(ids)), ids] = 1.0
        self.num_markers = markers.shape[0]
        self.keypoint_sets = {k: a[k] for k in body_format.KEYPOINT_SETS if k in a}

        # Every regressor (markers, keypoint sets) in one sparse gather table.
        self._regressor_names = ["markers", *self.keypoint_sets]
        mats = [markers, *self.keypoint_sets.values()]
        self._regressor_sizes = [m.shape[0] for m in mats]
        ids, weights = _sparse_rows(np.concatenate(mats, axis=0))
        self._reg_ids = tf.constant(ids)
        self._reg_weights = tf.constant(weights)

        self._v_template = tf.constant(a["v_template"])
        self._shapedirs = tf.constant(a["shapedirs"])
        self._weights = tf.constant(a["weights"])
        self._posedirs = tf.constant(a["posedirs"]) if "posedirs" in a else None
        if "J_regressor" in a:
            self._j_regressor = tf.constant(a["J_regressor"])
        else:
            self._j_regressor = None
            self._j_template = tf.constant(a["joints_template"])
            self._j_shapedirs = tf.constant(a["joints_shapedirs"])

        levels = _depth_levels(self.parents)
        order = np.concatenate(levels)
        position = np.argsort(order)  # where joint j sits in level order
        self._order = tf.constant(order)
        self._position = tf.constant(position)
        self._levels = [(int(sum(len(l) for l in levels[:d])), len(levels[d]),
                         tf.constant(position[self.parents[levels[d]]]))
                        for d in range(1, len(levels))]

    @classmethod
    def load(cls, path):
        """Read a body-model `.npz` (clear error when it is missing or malformed)."""
        return cls(body_format.load(path))

    def rest_joints(self, betas, shaped=None):
        """(B, S') betas -> (B, J, 3) joint locations of the shaped body in its rest pose
        (`shaped`: the betas' rest vertices, when already computed)."""
        betas = tf.cast(betas, tf.float32)
        if self._j_regressor is not None:
            shaped = self.shaped_vertices(betas) if shaped is None else shaped
            return tf.einsum("jv,bvc->bjc", self._j_regressor, shaped)
        s = betas.shape[-1]
        return self._j_template + tf.einsum("jcs,bs->bjc", self._j_shapedirs[..., :s], betas)

    def shaped_vertices(self, betas):
        """(B, S') betas -> (B, V, 3) rest-pose vertices (S' <= S uses the first directions)."""
        betas = tf.cast(betas, tf.float32)
        s = betas.shape[-1]
        if s > self.num_betas:
            raise ValueError(f"betas have {s} components, the body model has {self.num_betas}")
        dirs = tf.reshape(self._shapedirs[..., :s], [-1, s])  # (3V, S): one plain matmul
        offsets = tf.matmul(betas, dirs, transpose_b=True)
        return self._v_template + tf.reshape(offsets, [-1, self.num_vertices, 3])

    def _global_transforms(self, rotmats, joints):
        """Forward kinematics, one batched matmul per tree level: (B,J,3,3) rots, (B,J,3) pos."""
        rot = tf.gather(rotmats, self._order, axis=1)
        pos = tf.gather(joints, self._order, axis=1)
        g_rot, g_pos = rot[:, :1], pos[:, :1]
        for start, count, parent_pos in self._levels:
            p_rot = tf.gather(g_rot, parent_pos, axis=1)
            p_pos = tf.gather(g_pos, parent_pos, axis=1)
            p_rest = tf.gather(pos, parent_pos, axis=1)
            offset = pos[:, start:start + count] - p_rest
            g_rot = tf.concat([g_rot, tf.matmul(p_rot, rot[:, start:start + count])], axis=1)
            g_pos = tf.concat([g_pos, tf.einsum("bjik,bjk->bji", p_rot, offset) + p_pos], axis=1)
        return (tf.gather(g_rot, self._position, axis=1),
                tf.gather(g_pos, self._position, axis=1))

    def from_labels(self, betas, pose, transl):
        """The posed body of schema labels: betas (B,S'), pose (B,J,3) axis-angle, transl (B,3)
        (the ground truth the losses and the evaluator compare with)."""
        return self(betas, geometry.axis_angle_to_matrix(tf.cast(pose, tf.float32)), transl)

    def __call__(self, betas, rotmats, transl):
        """betas (B,S'), rotmats (B,J,3,3), transl (B,3) -> dict of (B, ., 3) float32 tensors:
        vertices, joints, markers and each keypoint set (h36m17, coco17)."""
        betas = tf.cast(betas, tf.float32)
        rotmats = tf.cast(rotmats, tf.float32)
        transl = tf.cast(transl, tf.float32)
        v = self.shaped_vertices(betas)
        joints = self.rest_joints(betas, v)
        if self._posedirs is not None:
            feat = rotmats[:, 1:] - tf.eye(3)
            feat = tf.reshape(feat, [-1, 9 * (self.num_joints - 1)])
            v = v + tf.einsum("vcp,bp->bvc", self._posedirs, feat)
        g_rot, g_pos = self._global_transforms(rotmats, joints)
        # Per-joint skinning transform [G_R | G_t - G_R J_rest], blended per vertex.
        t = g_pos - tf.einsum("bjik,bjk->bji", g_rot, joints)
        blend = tf.concat([g_rot, t[..., None]], axis=-1)  # (B, J, 3, 4)
        # (V, J) x (J, B*12) as one matmul; then each vertex applies its blended 3x4 transform
        # elementwise (a batched 3x3 matmul per vertex is several times slower on CPU).
        blend = tf.reshape(tf.transpose(blend, [1, 0, 2, 3]), [self.num_joints, -1])
        blend = tf.reshape(tf.matmul(self._weights, blend), [self.num_vertices, -1, 3, 4])
        blend = tf.transpose(blend, [1, 0, 2, 3])
        v_h = tf.concat([v, tf.ones_like(v[..., :1])], axis=-1)  # homogeneous (B, V, 4)
        verts = tf.reduce_sum(blend * v_h[:, :, None, :], axis=-1) + transl[:, None]
        out = {"vertices": verts, "joints": g_pos + transl[:, None]}
        points = tf.gather(verts, self._reg_ids, axis=1)  # (B, R, M, 3)
        points = tf.reduce_sum(points * self._reg_weights[..., None], axis=2)
        for name, part in zip(self._regressor_names,
                              tf.split(points, self._regressor_sizes, axis=1)):
            out[name] = part
        return out
