"""eval/blazepose: MediaPipe's anchor, NMS and ROI rules against hand-worked cases, the ROI
warp against the landmark decoding, and the models on rendered people (ground truth known)."""
import math

import numpy as np
import pytest

from eval.blazepose import BlazePose, detector, keypoints, landmarks
from pose_era import constants
from tests.anny_scenes import scenes


@pytest.fixture(scope="module")
def blazepose():
    return BlazePose()


def test_anchors_follow_the_ssd_layout():
    a = detector.ssd_anchors()
    assert a.shape == (28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6, 2) == (2254, 2)
    np.testing.assert_allclose(a[:3], [[0.5 / 28, 0.5 / 28]] * 2 + [[1.5 / 28, 0.5 / 28]])
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14])       # first of the 14x14 map
    np.testing.assert_allclose(a[1960:1966], [[0.5 / 7, 0.5 / 7]] * 6)  # 3 layers share 7x7
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])


def test_weighted_nms_averages_the_suppressed_boxes():
    scores = np.array([0.6, 0.9, 0.8])
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float64)
    kps = np.zeros((3, 4, 2))
    kps[:, 0, 0] = [3.0, 6.0, 100.0]
    out = detector.weighted_nms(scores, boxes, kps)
    assert [round(o[0], 6) for o in out] == [0.9, 0.8]
    np.testing.assert_allclose(out[0][1], [0.6 * 0 + 0.9 * 1, 0, 0.6 * 10 + 0.9 * 11, 10]
                               / np.array([1.5, 1, 1.5, 1]))
    assert out[0][2][0, 0] == pytest.approx((0.6 * 3 + 0.9 * 6) / 1.5)
    np.testing.assert_allclose(out[1][1], boxes[2])


def test_roi_points_from_the_hips_to_the_size_point():
    up = detector.roi_of(np.array([[100.0, 200.0], [100.0, 120.0], [0, 0], [0, 0]]))
    assert up.rotation == pytest.approx(0.0) and up.side == pytest.approx(2 * 80 * 1.25)
    np.testing.assert_allclose(up.center, [100, 200])
    right = detector.roi_of(np.array([[100.0, 200.0], [160.0, 200.0], [0, 0], [0, 0]]))
    assert right.rotation == pytest.approx(math.pi / 2)
    # the ROI's up axis points from the hips towards the size point
    assert np.allclose([math.sin(right.rotation), -math.cos(right.rotation)], [1, 0], atol=1e-9)


def test_roi_warp_and_landmark_decoding_agree():
    """A dot warped into the ROI input and decoded back lands where it was."""
    image = np.zeros((300, 400, 3), np.uint8)
    image[118:121, 248:251] = 255                         # dot centred at pixel (249.5, 119.5)
    roi = detector.Roi(np.array([220.0, 150.0]), 180.0, 0.7)
    crop = landmarks.preprocess(image, roi)[0, ..., 0]
    ys, xs = np.nonzero(crop > 0.2)
    w = crop[ys, xs]
    raw = np.zeros((39, 5), np.float32)
    raw[0, :2] = [(xs * w).sum() / w.sum() + 0.5, (ys * w).sum() / w.sum() + 0.5]
    lm, _ = landmarks.decode(raw.ravel(), np.zeros(117, np.float32), roi)
    np.testing.assert_allclose(lm[0, :2], [249.5, 119.5], atol=0.5)


def test_keypoint_maps():
    for k, name in enumerate(constants.COCO17_NAMES):
        assert keypoints.COCO17[k, landmarks.NAMES.index(name)] == 1.0
        assert keypoints.COCO17[k].sum() == 1.0
    assert np.allclose(keypoints.H36M17.sum(1), 1.0)   # all are affine combinations
    pts = np.random.default_rng(0).normal(size=(33, 3))
    vis = np.linspace(0.1, 0.9, 33)
    h36m, v = keypoints.convert(pts, vis, keypoints.H36M17)
    pelvis = constants.H36M17_NAMES.index("pelvis")
    hips = [landmarks.NAMES.index(n) for n in ("left_hip", "right_hip")]
    np.testing.assert_allclose(h36m[pelvis], pts[hips].mean(0))
    assert v[pelvis] == vis[hips].min()


def test_finds_rendered_people_and_their_keypoints(blazepose):
    for ex in scenes()[:4]:
        people = blazepose(ex["rgb"])
        assert len(people) == 1 and people[0].score > 0.5
        kp, gt = people[0].coco17(), ex["kp2d"]
        visible = gt[:, 2] == 2
        height = np.ptp(gt[:, 1])
        # a person seen from behind may come out mirrored (left <-> right): allow either
        err = min(np.median(np.linalg.norm(k[visible, :2] - gt[visible, :2], axis=1))
                  for k in (kp, kp[list(constants.COCO17_FLIP_PERM)]))
        assert err < 0.08 * height, err
        x, y, w, h = people[0].box()
        assert x <= gt[visible, 0].min() and gt[visible, 0].max() <= x + w
        # a person pasted small into a larger photo is found at the right place
        photo = np.full((720, 960, 3), 120, np.uint8)
        photo[120:600, 240:720] = ex["rgb"]
        big = blazepose(photo)
        assert big
        np.testing.assert_allclose(big[0].box()[:2], np.array(people[0].box()[:2]) + [240, 120],
                                   atol=0.1 * height)


def test_nobody_in_a_blank_or_noise_image(blazepose):
    rng = np.random.default_rng(0)
    assert blazepose(np.full((240, 320, 3), 128, np.uint8)) == []
    assert blazepose(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)) == []
    assert blazepose(np.zeros((1, 1, 3), np.uint8)) == []
