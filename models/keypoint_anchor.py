"""A keypoint-fed network's translation, solved from its keypoint input instead of regressed.

Why: on real photos the released keypoint-fed network (models/keypoint_input.py) gets the pose
roughly right but not the distance: on bus.jpg it put a standing woman 0.6 m too close, so
her mesh was drawn 1.4 times her size and 1 of her 14 joints landed within tolerance
(docs/eval_demo.md). The distance is a guess from the image's scale cues, which a network
trained on renders reads badly on photos; the keypoints it is given say exactly where the
body is in the crop. So, as SPIN does to place its bodies (its estimate_translation), the body
is moved by the one 3D shift d that best projects its COCO-17 joints X_k onto the given
keypoints (u_k, v_k) (flag 1):

    with P = K (3x3, any projection, as augmentation makes it), p = P (X + d):
    u p_2 - p_0 = 0  <=>  (u P_2 - P_0) . d = (P_0 - u P_2) . X,   likewise for v with P_1,

linear in d: two equations per given keypoint, solved in least squares (normal equations,
rows scaled by 1/sqrt|det P[:2,:2]| so residuals are in metres at unit depth, plus a small
ridge that keeps d at 0 when the keypoints do not determine it). The shift is applied to every
3D output (markers, all refinement steps, translation, vertices, joints), so the mesh, its
markers and its joints stay one body.
Only at inference: in training the shift is 0 and the network's own translation is trained as
before (it is the fallback below). Through the shift, the loss on the markers' centroid reaches
the pose: the network can move the body by bending or resizing it, so that the solved shift
lands it right (measured in docs/pose_results.md, "The keypoint-fed network on real photos").
With fewer than MIN_KEYPOINTS given keypoints, or a shift that would put a joint within
MIN_DEPTH of the camera, d = 0: the network's own translation is kept.
"""
import keras
from keras import ops

MIN_KEYPOINTS = 4        # 8 equations for 3 unknowns; fewer is too easily swayed by one error
MIN_DEPTH = 0.2          # metres: a shift that puts a joint nearer than this is refused
RIDGE = 1e-4             # added to the normal matrix's diagonal (metres^2 units)


def solve_shift(joints, keypoints, K, image_size):
    """(B,17,3) camera-frame joints, (B,17,3) keypoint input (u / S, v / S, flag), (B,3,3) K
    -> (B,3) the least-squares shift d (module docstring); 0 where too few keypoints are given
    or the shift would put a joint within MIN_DEPTH of the camera."""
    joints, keypoints, K = (ops.cast(t, "float32") for t in (joints, keypoints, K))
    uv = keypoints[..., :2] * float(image_size)
    flag = keypoints[..., 2]
    scale = ops.sqrt(ops.abs(K[:, 0, 0] * K[:, 1, 1] - K[:, 0, 1] * K[:, 1, 0]))
    rows = []
    for axis in range(2):          # (u P_2 - P_0) / scale, per keypoint: (B, 17, 3)
        rows.append((uv[..., axis, None] * K[:, None, 2, :] - K[:, None, axis, :])
                    / scale[:, None, None])
    A = ops.concatenate(rows, axis=1) * ops.concatenate([flag, flag], axis=1)[..., None]
    X = ops.concatenate([joints, joints], axis=1)
    b = -ops.sum(A * X, axis=-1)                                     # (B, 34)
    normal = ops.einsum("bni,bnj->bij", A, A) + RIDGE * ops.eye(3)[None]
    d = ops.squeeze(ops.solve(normal, ops.einsum("bni,bn->bi", A, b)[..., None]), -1)
    enough = ops.sum(flag, axis=-1) >= MIN_KEYPOINTS
    in_front = ops.min(joints[..., 2], axis=-1) + d[:, 2] >= MIN_DEPTH
    return ops.where((enough & in_front)[:, None], d, ops.zeros_like(d))


class KeypointAnchor(keras.layers.Layer):
    """[outputs dict, keypoints (B,17,3), K (B,3,3)] -> the dict with every 3D output moved by
    `solve_shift` of its coco17 joints (in training by 0); other outputs unchanged. `shift`
    (B,3) is added."""

    POINTS = ("markers", "vertices", "joints", "mesh_markers", "h36m17", "coco17")

    def __init__(self, image_size, **kwargs):
        super().__init__(**kwargs)
        self.image_size = float(image_size)

    def call(self, outputs, keypoints, K, training=None):
        if training:         # the network's own translation is trained (module docstring)
            d = ops.zeros_like(outputs["transl"])
        else:
            d = solve_shift(outputs["coco17"], keypoints, K, self.image_size)
        moved = dict(outputs)
        for key in self.POINTS:
            moved[key] = outputs[key] + d[:, None, :]
        moved["markers_list"] = outputs["markers_list"] + d[:, None, None, :]
        moved["transl"] = outputs["transl"] + d
        moved["shift"] = d
        return moved
