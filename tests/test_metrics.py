"""eval.metrics against hand-computed cases and an independent NumPy copy of SPIN's formula."""
import numpy as np
import pytest
import tensorflow as tf

from eval import metrics
from pose_era import constants


def _skeletons(n=5, joints=17, seed=0):
    return np.random.default_rng(seed).normal(scale=0.3, size=(n, joints, 3))


def _rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q * np.linalg.det(q)  # det +1


def _spin_reconstruction_error(s1, s2):
    """SPIN utils/pose_utils.py, per sample, written out in float64 (3xN convention)."""
    errors = []
    for a, b in zip(s1, s2):
        x1, x2 = a.T, b.T
        mu1, mu2 = x1.mean(1, keepdims=True), x2.mean(1, keepdims=True)
        x1, x2c = x1 - mu1, x2 - mu2
        k = x1 @ x2c.T
        u, _, vh = np.linalg.svd(k)
        v = vh.T
        z = np.eye(3)
        z[-1, -1] *= np.sign(np.linalg.det(u @ v.T))
        r = v @ z @ u.T
        scale = np.trace(r @ k) / np.sum(x1 ** 2)
        t = mu2 - scale * r @ mu1
        aligned = scale * r @ a.T + t
        errors.append(np.sqrt(((aligned - x2) ** 2).sum(0)).mean())
    return 1000 * np.array(errors)


def test_ground_truth_against_itself_is_zero():
    gt = _skeletons()
    np.testing.assert_allclose(metrics.mpjpe(gt, gt), 0, atol=1e-9)
    np.testing.assert_allclose(metrics.mpjpe(gt, gt, pelvis="hips"), 0, atol=1e-9)
    np.testing.assert_allclose(metrics.pa_mpjpe(gt, gt), 0, atol=1e-6)
    verts = _skeletons(joints=50)
    np.testing.assert_allclose(metrics.mpvpe(verts, verts, align="none"), 0, atol=1e-9)
    p = metrics.pelvis_of(gt)
    np.testing.assert_allclose(metrics.mpvpe(verts, verts, pred_pelvis=p, gt_pelvis=p), 0,
                               atol=1e-9)


def test_constant_offset_vanishes_after_pelvis_alignment():
    gt = _skeletons()
    pred = gt + np.array([0.1, -0.2, 3.0])
    np.testing.assert_allclose(metrics.mpjpe(pred, gt), 0, atol=1e-9)
    np.testing.assert_allclose(metrics.mpjpe(pred, gt, pelvis="hips"), 0, atol=1e-9)


def test_one_joint_moved_by_14_mm_among_14_gives_1_mm():
    gt = _skeletons()
    pred = gt.copy()
    moved = constants.H36M_TO_J14[3]
    pred[:, moved] += np.array([0.0, 0.014, 0.0])
    np.testing.assert_allclose(metrics.mpjpe(pred, gt), 1.0, rtol=1e-9)
    # a joint outside the 14 (H36M spine) does not count
    spine_moved = gt.copy()
    spine_moved[:, 7] += 0.5
    np.testing.assert_allclose(metrics.mpjpe(spine_moved, gt), 0, atol=1e-9)


def test_pelvis_choice_spin_joint0_vs_hip_midpoint():
    gt = _skeletons()
    pred = gt.copy()
    pred[:, 0] += np.array([0.03, 0.0, 0.04])  # the H36M pelvis joint moves 50 mm
    # SPIN subtracts joint 0: all 14 joints appear shifted by 50 mm; hips ignore joint 0
    np.testing.assert_allclose(metrics.mpjpe(pred, gt, pelvis="spin"), 50.0, rtol=1e-9)
    np.testing.assert_allclose(metrics.mpjpe(pred, gt, pelvis="hips"), 0, atol=1e-9)
    hips = [constants.H36M17_NAMES.index("left_hip"), constants.H36M17_NAMES.index("right_hip")]
    np.testing.assert_allclose(metrics.pelvis_of(gt, "hips")[:, 0], gt[:, hips].mean(1))


def test_j24_ground_truth_matches_h36m17():
    gt17 = _skeletons()
    gt24 = _skeletons(joints=24, seed=1)  # joints outside the map are noise
    for h, j in enumerate(constants.J24_TO_H36M17):
        gt24[:, j] = gt17[:, h]
    pred = gt17 + _skeletons(seed=2) * 0.1
    for pelvis in metrics.PELVIS:
        np.testing.assert_allclose(metrics.mpjpe(pred, gt24, pelvis, gt_layout="j24"),
                                   metrics.mpjpe(pred, gt17, pelvis), rtol=1e-12)
    np.testing.assert_allclose(metrics.pa_mpjpe(pred, gt24, gt_layout="j24"),
                               metrics.pa_mpjpe(pred, gt17), rtol=1e-9)


def test_similarity_transform_is_undone_exactly():
    rng = np.random.default_rng(3)
    gt = _skeletons()
    pred = np.stack([1.7 * s @ _rotation(rng).T + rng.normal(size=3) for s in gt])
    assert (metrics.mpjpe(pred, gt) > 10).all()
    np.testing.assert_allclose(metrics.pa_mpjpe(pred, gt), 0, atol=1e-6)


def test_reflection_is_not_fixed_into_a_rotation():
    gt = _skeletons()
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    pa = metrics.pa_mpjpe(mirrored, gt)
    # an orthogonal Procrustes allowing reflections would reach 0; SPIN's cannot
    assert (pa > 20).all()
    np.testing.assert_allclose(pa, _spin_reconstruction_error(
        mirrored[:, constants.H36M_TO_J14], gt[:, constants.H36M_TO_J14]), rtol=1e-9)


def test_pa_mpjpe_matches_spin_reference_on_random_pairs():
    gt = _skeletons(n=20)
    pred = _skeletons(n=20, seed=4)
    ref = _spin_reconstruction_error(pred[:, constants.H36M_TO_J14],
                                     gt[:, constants.H36M_TO_J14])
    np.testing.assert_allclose(metrics.pa_mpjpe(pred, gt), ref, rtol=1e-9)


def test_mpvpe_alignment_options():
    gt = _skeletons(joints=40)
    offset = np.array([0.0, 0.003, 0.004])  # 5 mm
    pred = gt + offset
    np.testing.assert_allclose(metrics.mpvpe(pred, gt, align="none"), 5.0, rtol=1e-9)
    zero = np.zeros((len(gt), 3))
    np.testing.assert_allclose(
        metrics.mpvpe(pred, gt, pred_pelvis=zero + offset, gt_pelvis=zero), 0, atol=1e-9)
    with pytest.raises(ValueError, match="pred_pelvis"):
        metrics.mpvpe(pred, gt)


def test_tf_versions_run_in_a_graph_in_float32():
    gt = _skeletons().astype(np.float32)
    pred = gt + _skeletons(seed=5).astype(np.float32) * 0.05

    @tf.function
    def both(p, g):
        return metrics.tf_mpjpe(p, g), metrics.tf_pa_mpjpe(p, g)

    m, pa = both(tf.constant(pred), tf.constant(gt))
    assert m.dtype == tf.float32 and m.shape == (len(gt),)
    np.testing.assert_allclose(m.numpy(), metrics.mpjpe(pred, gt), rtol=1e-4)
    np.testing.assert_allclose(pa.numpy(), metrics.pa_mpjpe(pred, gt), rtol=1e-3)


def test_bad_input_is_a_clear_error():
    gt = _skeletons()
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        metrics.mpjpe(gt[:, :14], gt[:, :14])
    with pytest.raises(ValueError, match="pelvis='root'"):
        metrics.mpjpe(gt, gt, pelvis="root")
    with pytest.raises(ValueError, match="align='procrustes'"):
        metrics.mpvpe(gt, gt, align="procrustes")
    with pytest.raises(ValueError, match="layout='coco17'"):
        metrics.mpjpe(gt, gt, layout="coco17")
