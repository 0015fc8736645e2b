"""Augmentation: every label moves with the image. Checked against projections of the moved 3D,
a pixel map written out in NumPy, blob positions in the warped image, and a tiny symmetric body
model run on the augmented parameters."""
import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import augment, images
from pose_era import constants
from pose_era import geometry
from pose_era.body import BodyModel
from tests import data_files as files

SIZE = 96
SHARED = [n for n in constants.COCO17_NAMES if n in constants.H36M17_NAMES]  # 12 body joints
H36M_IDX = [constants.H36M17_NAMES.index(n) for n in SHARED]
COCO_IDX = [constants.COCO17_NAMES.index(n) for n in SHARED]
MARKER_FLIP = (1, 0, 3, 2, 5, 4)


def _example(seed=0, K=((100.0, 0.0, 45.0), (0.0, 100.0, 50.0), (0.0, 0.0, 1.0))):
    """A consistent example: kp2d = projection of j3d where both exist, a blob at the left
    wrist, markers in mirror pairs (x -> -x), random body parameters."""
    rng = np.random.default_rng(seed)
    K = np.array(K)
    j3d = np.array([0.0, 0.0, 3.0]) + rng.uniform(-0.4, 0.4, (17, 3))
    kp2d = np.zeros((17, 3))
    kp2d[:, :2] = rng.uniform(10, 80, (17, 2))  # face keypoints: 2D only
    kp2d[COCO_IDX, :2] = files.project(j3d[H36M_IDX], K)
    kp2d[:, 2] = 1.0
    kp2d[constants.COCO17_NAMES.index("left_ear")] = 0  # one unlabelled keypoint
    half = np.array([0.0, 0.0, 3.0]) + rng.uniform(-0.3, 0.3, (3, 3))
    markers = np.stack([half, half * [-1, 1, 1]], axis=1).reshape(6, 3)
    u, v = kp2d[constants.COCO17_NAMES.index("left_wrist"), :2]
    uu, vv = np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5
    blob = np.exp(-((uu[None] - u) ** 2 + (vv[:, None] - v) ** 2) / (2 * 1.5 ** 2))
    image = np.stack([blob, blob, blob], -1)
    ex = dict(image=image, K=K, kp2d=kp2d, j3d=j3d, has_j3d=1.0, markers=markers,
              has_markers=1.0, betas=rng.normal(0, 1, 2), pose=rng.normal(0, 0.5, (3, 3)),
              transl=np.array([0.1, 0.2, 3.0]), has_params=1.0, imgname="x")
    return {k: tf.constant(v, tf.string if k == "imgname" else tf.float32) for k, v in ex.items()}


def _pixel_map(scale, angle, flip):
    """NumPy: p -> c + s R(angle) F (p - c), F = diag(-1, 1) when flipped."""
    c = SIZE / 2
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lin = scale * rot @ np.diag([-1.0 if flip else 1.0, 1.0])
    return lambda p: (p - c) @ lin.T + c


def _symmetric_body():
    """3 joints (root on the midline, a left and a right child) + a 'foot' vertex per child,
    mirror-symmetric in x including the shape directions."""
    joints = np.array([[0.0, 0.9, 0.05], [0.15, 0.5, 0.0], [-0.15, 0.5, 0.0]])
    verts = np.concatenate([joints, [[0.17, 0.0, 0.08], [-0.17, 0.0, 0.08]]])
    mirror_dirs = lambda p: np.stack([0.1 * p, np.tile([0.0, 0.05, 0.02], (len(p), 1))], -1)
    weights = np.zeros((5, 3))
    weights[[0, 1, 2, 3, 4], [0, 1, 2, 1, 2]] = 1.0
    arrays = dict(v_template=verts, shapedirs=mirror_dirs(verts), weights=weights,
                  parents=np.array([-1, 0, 0]), faces=np.array([[0, 1, 2]]),
                  joint_names=np.array(["root", "left", "right"]),
                  markers=np.array([0, 3, 4]), joints_template=joints,
                  joints_shapedirs=mirror_dirs(joints), joint_flip=np.array([0, 2, 1]),
                  marker_flip=np.array([0, 2, 1]))
    return BodyModel(arrays)


def _moved_2d_consistent(out):
    proj = files.project(out["j3d"].numpy()[H36M_IDX], out["K"].numpy())
    np.testing.assert_allclose(proj, out["kp2d"].numpy()[COCO_IDX, :2], atol=2e-3)


@pytest.mark.parametrize("scale,angle,flip", [(1.0, 0.5, False), (1.2, -0.3, True),
                                              (0.8, 0.0, False)])
def test_geometry_keeps_2d_equal_to_projection_of_3d(scale, angle, flip):
    ex = _example()
    a, q = augment.transforms(tf.constant(scale), tf.constant(angle), tf.constant(flip), SIZE)
    out = augment.apply_geometry(ex, a, q, tf.constant(flip), tf.constant(angle),
                                 augment.Symmetry(marker_flip=MARKER_FLIP))
    _moved_2d_consistent(out)
    # Every 2D keypoint (face ones too) follows the hand-written pixel map (+ swap if flipped).
    moved = _pixel_map(scale, angle, flip)(ex["kp2d"].numpy()[:, :2])
    perm = list(constants.COCO17_FLIP_PERM) if flip else list(range(17))
    vis = ex["kp2d"].numpy()[perm, 2] > 0
    np.testing.assert_allclose(out["kp2d"].numpy()[vis, :2], moved[perm][vis], atol=2e-3)
    np.testing.assert_array_equal(out["kp2d"].numpy()[~vis], 0)
    # Markers: projection of the moved markers = moved projection of the old ones.
    old = _pixel_map(scale, angle, flip)(files.project(ex["markers"].numpy(), ex["K"].numpy()))
    mperm = list(MARKER_FLIP) if flip else list(range(6))
    np.testing.assert_allclose(files.project(out["markers"].numpy(), out["K"].numpy()),
                               old[mperm], atol=2e-3)
    # The image moved the same way: the left wrist's blob is where its keypoint went.
    name = "right_wrist" if flip else "left_wrist"  # after a flip the blob is the right wrist
    u, v = out["kp2d"].numpy()[constants.COCO17_NAMES.index(name), :2]
    np.testing.assert_allclose(files.blob_centroid(out["image"].numpy(), u, v, radius=6),
                               [u, v], atol=0.1)
    # K stays a pinhole matrix when fx = fy: focal scaled, no skew.
    K = out["K"].numpy()
    np.testing.assert_allclose([K[0, 0], K[1, 1], K[0, 1], K[1, 0]],
                               [100 * scale, 100 * scale, 0, 0], atol=1e-3)


def test_flip_swaps_left_and_right():
    ex = _example(seed=1)
    a, q = augment.transforms(tf.constant(1.0), tf.constant(0.0), tf.constant(True), SIZE)
    out = augment.apply_geometry(ex, a, q, tf.constant(True), tf.constant(0.0))
    for left, right in (("left_wrist", "right_wrist"), ("left_ankle", "right_ankle")):
        c_l, c_r = constants.COCO17_NAMES.index(left), constants.COCO17_NAMES.index(right)
        u, v = ex["kp2d"].numpy()[c_r, :2]
        np.testing.assert_allclose(out["kp2d"].numpy()[c_l], [SIZE - u, v, 1.0], atol=1e-4)
        h_l, h_r = constants.H36M17_NAMES.index(left), constants.H36M17_NAMES.index(right)
        np.testing.assert_allclose(out["j3d"].numpy()[h_l],
                                   ex["j3d"].numpy()[h_r] * [-1, 1, 1], atol=1e-6)
    K = ex["K"].numpy()
    np.testing.assert_allclose(out["K"].numpy(),
                               [[K[0, 0], 0, SIZE - K[0, 2]], [0, K[1, 1], K[1, 2]], [0, 0, 1]],
                               atol=1e-4)
    _moved_2d_consistent(out)
    # No marker/joint mirror permutation given: those labels are switched off, not wrong.
    assert out["has_markers"].numpy() == 0 and out["has_params"].numpy() == 0


def test_flip_twice_is_identity():
    ex = _example(seed=2)
    body = _symmetric_body()
    symmetry = augment.Symmetry(MARKER_FLIP, (0, 2, 1), lambda b: body.rest_joints(b)[:, 0])
    ex["betas"] = tf.constant([0.3, -0.5])
    a, q = augment.transforms(tf.constant(1.0), tf.constant(0.0), tf.constant(True), SIZE)
    once = augment.apply_geometry(ex, a, q, tf.constant(True), tf.constant(0.0), symmetry)
    twice = augment.apply_geometry(once, a, q, tf.constant(True), tf.constant(0.0), symmetry)
    for key in ex:
        if key != "imgname":
            np.testing.assert_allclose(twice[key].numpy(), ex[key].numpy(), atol=1e-5,
                                       err_msg=key)
    assert not np.allclose(once["image"].numpy(), ex["image"].numpy())


@pytest.mark.parametrize("angle,flip", [(0.6, False), (-0.4, True), (0.0, True)])
def test_body_parameters_follow_the_camera_map(angle, flip):
    body = _symmetric_body()
    symmetry = augment.Symmetry.from_body_model(body)
    ex = _example(seed=3)
    ex["betas"] = tf.constant([0.4, -0.7])
    ex["markers"] = ex["markers"][:3]  # the body model's marker count
    a, q = augment.transforms(tf.constant(1.1), tf.constant(angle), tf.constant(flip), SIZE)
    out = augment.apply_geometry(ex, a, q, tf.constant(flip), tf.constant(angle), symmetry)
    assert out["has_params"].numpy() == 1.0

    def run(e):
        res = body(e["betas"][None], geometry.axis_angle_to_matrix(e["pose"])[None],
                   e["transl"][None])
        return res["markers"][0].numpy()

    before, after = run(ex), run(out)
    perm = [0, 2, 1] if flip else [0, 1, 2]
    np.testing.assert_allclose(after, (before @ q.numpy().T)[perm], atol=1e-5)


def test_parameters_dropped_without_rest_root():
    ex = _example()
    a, q = augment.transforms(tf.constant(1.0), tf.constant(0.3), tf.constant(False), SIZE)
    out = augment.apply_geometry(ex, a, q, tf.constant(False), tf.constant(0.3))
    assert out["has_params"].numpy() == 0 and out["has_markers"].numpy() == 1
    a, q = augment.transforms(tf.constant(1.3), tf.constant(0.0), tf.constant(False), SIZE)
    out = augment.apply_geometry(ex, a, q, tf.constant(False), tf.constant(0.0))
    assert out["has_params"].numpy() == 1  # magnification alone moves no 3D


def test_random_augment_is_consistent_and_reproducible():
    ex = _example(K=((100.0, 0.0, 45.0), (0.0, 120.0, 50.0), (0.0, 0.0, 1.0)))  # fx != fy
    cfg = augment.AugmentConfig(rotation_prob=1.0)
    outs = [augment.augment(ex, tf.constant([7, i]), cfg) for i in range(4)]
    for out in outs:
        _moved_2d_consistent(out)  # exact even with fx != fy under rotation
        img = out["image"].numpy()
        assert img.min() >= 0 and img.max() <= 1
    again = augment.augment(ex, tf.constant([7, 0]), cfg)
    np.testing.assert_array_equal(again["image"].numpy(), outs[0]["image"].numpy())
    assert not np.allclose(outs[0]["K"].numpy(), outs[1]["K"].numpy())


def test_colour_is_gain_then_contrast_then_saturation():
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 1, (8, 9, 3))
    params = {"gain": tf.constant([1.2, 0.8, 1.1]), "contrast": tf.constant(0.7),
              "saturation": tf.constant(1.3)}
    x = image * [1.2, 0.8, 1.1]
    x = x.mean() + 0.7 * (x - x.mean())
    grey = x.mean(axis=-1, keepdims=True)
    expected = np.clip(grey + 1.3 * (x - grey), 0, 1)
    got = augment.color(tf.constant(image, tf.float32), params).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("dtype", [tf.uint8, tf.float32])
def test_fast_and_general_warps_agree(dtype):
    rng = np.random.default_rng(6)
    image = tf.cast(rng.uniform(0, 255 if dtype == tf.uint8 else 1, (30, 40, 3)), dtype)
    affine = tf.constant([[-1.7, 0.0, 50.0], [0.0, 1.3, -4.0], [0.0, 0.0, 1.0]])
    fast = images._warp_aligned(image, affine, 24).numpy()
    general = images._warp_general(tf.cast(image, tf.float32), affine, 24).numpy()
    # Equal wherever all four bilinear neighbours are inside the source.
    inside = general.min(axis=-1) > 0
    inside[[0, -1]], inside[:, [0, -1]] = False, False
    scale = 255.0 if dtype == tf.uint8 else 1.0
    np.testing.assert_allclose(fast[inside] / scale, general[inside] / scale, atol=1e-5)
    assert inside.sum() > 200
