"""pose_era.geometry against independent references: SciPy rotations, NumPy formulas, hand math."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from pose_era import geometry


def _random_axis_angles(n, seed=0):
    rng = np.random.default_rng(seed)
    aa = rng.normal(size=(n, 3))
    aa[0] = 0.0                          # identity
    aa[1] = [1e-9, -2e-9, 0.0]           # tiny angle (Taylor branch)
    aa[2] = [0.0, np.pi - 1e-5, 0.0]     # nearly 180 degrees
    aa[3] = [np.pi / np.sqrt(3)] * 3     # exactly 180 degrees
    return aa


def test_axis_angle_to_matrix_matches_scipy():
    aa = _random_axis_angles(200)
    ours = geometry.axis_angle_to_matrix(tf.constant(aa)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)


def test_matrix_to_axis_angle_round_trip():
    aa = _random_axis_angles(200, seed=1)
    mats = Rotation.from_rotvec(aa).as_matrix()
    back = geometry.matrix_to_axis_angle(tf.constant(mats)).numpy()
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), mats, atol=1e-9)
    # Away from 180 degrees the axis-angle itself is unique.
    ok = np.linalg.norm(aa, axis=1) < np.pi - 1e-3
    np.testing.assert_allclose(back[ok], aa[ok], atol=1e-9)


def test_axis_angle_gradient_finite_at_identity():
    aa = tf.Variable(tf.zeros((2, 3)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(geometry.axis_angle_to_matrix(aa) * tf.random.normal((2, 3, 3)))
    grad = tape.gradient(loss, aa).numpy()
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_rot6d_round_trip_and_gram_schmidt():
    mats = Rotation.random(50, random_state=2).as_matrix()
    six = geometry.matrix_to_rot6d(tf.constant(mats)).numpy()
    np.testing.assert_allclose(six, np.concatenate([mats[:, :, 0], mats[:, :, 1]], -1))
    np.testing.assert_allclose(geometry.rot6d_to_matrix(tf.constant(six)).numpy(), mats,
                               atol=1e-12)
    # Arbitrary 6 numbers: NumPy Gram-Schmidt reference, a proper rotation.
    x = np.random.default_rng(3).normal(size=(50, 6))
    b1 = x[:, :3] / np.linalg.norm(x[:, :3], axis=1, keepdims=True)
    a2 = x[:, 3:] - np.sum(b1 * x[:, 3:], axis=1, keepdims=True) * b1
    b2 = a2 / np.linalg.norm(a2, axis=1, keepdims=True)
    ref = np.stack([b1, b2, np.cross(b1, b2)], axis=-1)
    ours = geometry.rot6d_to_matrix(tf.constant(x)).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(ours), 1.0, atol=1e-12)


def test_project_by_hand():
    K = np.array([[1000.0, 0, 320.5], [0, 900.0, 240.25], [0, 0, 1]])
    pts = np.array([[[0.1, -0.2, 2.0], [0.0, 0.0, 4.0]]])
    uv = geometry.project(tf.constant(pts), tf.constant(K[None])).numpy()
    expected = [[320.5 + 1000 * 0.05, 240.25 - 900 * 0.1], [320.5, 240.25]]
    np.testing.assert_allclose(uv[0], expected, atol=1e-9)


def test_default_focal_and_intrinsics():
    assert geometry.default_focal(640, 480).numpy() == pytest.approx(800.0)
    K = geometry.intrinsics(tf.constant(800.0), 640, 480).numpy()
    np.testing.assert_allclose(K, [[800, 0, 320], [0, 800, 240], [0, 0, 1]])


def test_crop_intrinsics_by_hand_and_inverse():
    K = np.array([[1000.0, 0, 500], [0, 1000.0, 400], [0, 0, 1]])
    box = np.array([100.0, 50.0, 300.0, 250.0])  # 200 x 200 px box -> 480 px crop
    Kc = geometry.crop_intrinsics(tf.constant(K), tf.constant(box), 480).numpy()
    s = 480 / 200
    np.testing.assert_allclose(Kc, [[1000 * s, 0, (500 - 100) * s], [0, 1000 * s, (400 - 50) * s],
                                    [0, 0, 1]], atol=1e-9)
    # A point's crop pixel = (full pixel - box corner) * scale.
    p = tf.constant([[[0.3, -0.1, 3.0]]], tf.float64)
    full = geometry.project(p, tf.constant(K[None])).numpy()[0, 0]
    crop = geometry.project(p, tf.constant(Kc[None])).numpy()[0, 0]
    np.testing.assert_allclose(crop, (full - box[:2]) * s, atol=1e-9)
    back = geometry.uncrop_intrinsics(tf.constant(Kc), tf.constant(box), 480).numpy()
    np.testing.assert_allclose(back, K, atol=1e-9)


def _procrustes_reference(s1, s2):
    """SPIN's compute_similarity_transform, one sample, 3xN, float64."""
    s1, s2 = s1.T, s2.T
    mu1, mu2 = s1.mean(axis=1, keepdims=True), s2.mean(axis=1, keepdims=True)
    x1, x2 = s1 - mu1, s2 - mu2
    var1 = np.sum(x1 ** 2)
    k = x1 @ x2.T
    u, _, vh = np.linalg.svd(k)
    v = vh.T
    z = np.eye(3)
    z[2, 2] *= np.sign(np.linalg.det(u @ v.T))
    r = v @ z @ u.T
    scale = np.trace(r @ k) / var1
    t = mu2 - scale * (r @ mu1)
    return (scale * r @ s1 + t).T


def test_procrustes_undoes_similarity_exactly():
    rng = np.random.default_rng(4)
    pred = rng.normal(size=(3, 14, 3))
    rot = Rotation.random(3, random_state=5).as_matrix()
    gt = 1.7 * np.einsum("bij,bnj->bni", rot, pred) + rng.normal(size=(3, 1, 3))
    aligned = geometry.procrustes_align(tf.constant(pred), tf.constant(gt)).numpy()
    np.testing.assert_allclose(aligned, gt, atol=1e-10)


def test_procrustes_matches_reference_and_float32():
    rng = np.random.default_rng(6)
    pred, gt = rng.normal(size=(5, 17, 3)), rng.normal(size=(5, 17, 3))
    ref = np.stack([_procrustes_reference(p, g) for p, g in zip(pred, gt)])
    np.testing.assert_allclose(geometry.procrustes_align(pred, gt).numpy(), ref, atol=1e-10)
    ours32 = geometry.procrustes_align(pred.astype(np.float32), gt.astype(np.float32)).numpy()
    assert ours32.dtype == np.float32
    np.testing.assert_allclose(ours32, ref, atol=1e-4)


def test_procrustes_never_reflects():
    rng = np.random.default_rng(7)
    pred = rng.normal(size=(1, 20, 3))
    gt = pred * np.array([-1.0, 1.0, 1.0])  # a mirror image: no rotation reaches it
    aligned = geometry.procrustes_align(tf.constant(pred), tf.constant(gt)).numpy()
    assert np.abs(aligned - gt).max() > 0.1
    # The fitted map is a proper rotation (det +1): recover it from the centred clouds.
    x1 = pred[0] - pred[0].mean(0)
    y = aligned[0] - aligned[0].mean(0)
    m = np.linalg.lstsq(x1, y, rcond=None)[0]
    assert np.linalg.det(m) > 0
    np.testing.assert_allclose(aligned[0], _procrustes_reference(pred[0], gt[0]), atol=1e-10)
