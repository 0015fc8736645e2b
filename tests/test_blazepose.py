"""eval/blazepose: MediaPipe's anchor, NMS and ROI rules against hand-worked cases, the ROI
warp against the landmark decoding, and the models on rendered people (ground truth known),
the world landmarks' axes included; several small people in a wide photo (multiscale.py: tiles,
each person once)."""
import math

import cv2
import numpy as np
import pytest
import tensorflow as tf

from eval.blazepose import BlazePose, detector, keypoints, landmarks, multiscale
from pose_era import constants, geometry
from tests.anny_scenes import render_at, scenes


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
    # wide and large enough for tiles at two scales (multiscale.tiles): still nobody
    assert len(multiscale.tile_sides(1500, 600)) == 2
    assert blazepose(rng.integers(0, 256, (600, 1500, 3), dtype=np.uint8)) == []
    ramp = np.linspace(0, 255, 1500).astype(np.uint8)
    assert blazepose(np.repeat(np.stack([ramp] * 3, -1)[None], 600, axis=0)) == []


def _turn_deg(source, target):
    """(angle, yaw) in degrees of the rotation best taking points source to target (N, 3)."""
    r, _ = geometry.best_rotation(tf.constant((source - source.mean(0))[None], tf.float64),
                                  tf.constant((target - target.mean(0))[None], tf.float64))
    r = r.numpy()[0]
    return (math.degrees(math.acos(np.clip((np.trace(r) - 1) / 2, -1, 1))),
            math.degrees(math.atan2(r[0, 2], r[2, 2])))


def test_world_landmarks_turn_into_the_camera_frame(blazepose):
    """Bodies rendered 2.2 m left and right of the axis of a wide camera (36 degrees off it):
    the raw world landmarks are turned from the true joints by about the ray's yaw (x right,
    y down, z forward, but the axes of a camera looking at the person), world_coco17(K)'s
    are not."""
    K = np.array([[380.0, 0, 480], [0, 380.0, 240], [0, 0, 1]], np.float32)
    limbs = [constants.COCO17_NAMES.index(f"{side}_{part}") for side in ("left", "right")
             for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")]
    raw, turned = [], []
    for ex in (scenes()[i] for i in (0, 3, 6)):
        for x in (-2.2, 2.2):
            rgb, out = render_at(ex, (x, 0.0, 3.0), K, 480, 960)
            person = blazepose(rgb)[0]
            truth = out["coco17"][limbs].astype(np.float64)
            world = keypoints.convert(person.world, person.landmarks[:, 3], keypoints.COCO17)[0]
            angle, yaw = _turn_deg(world[limbs].astype(np.float64), truth)
            assert np.sign(yaw) == np.sign(x), (x, yaw)
            raw.append(angle)
            turned.append(_turn_deg(person.world_coco17(K)[limbs, :3].astype(np.float64),
                                    truth)[0])
    assert np.mean(raw) > 30 and np.mean(turned) < 20, (raw, turned)   # measured 41 and 12
    assert all(t < r for t, r in zip(turned, raw)), (raw, turned)


def test_view_rotation_takes_the_axis_onto_the_ray():
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    r = landmarks.view_rotation(K, (820.0, -260.0))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(r @ [0, 0, 1], np.array([1.0, -1.0, 1.0]) / math.sqrt(3),
                               atol=1e-6)
    np.testing.assert_allclose(landmarks.view_rotation(K, (320.0, 240.0)), np.eye(3), atol=1e-7)


def test_presence_says_which_keypoints_are_in_the_photo(blazepose):
    """A rendered person cut just below the hips: BlazePose still draws knees and ankles (just
    past the border), but rates them absent (here; on other scenes presence is less sure, see
    docs/eval_demo.md); the shoulders present."""
    ex = scenes()[2]
    kp, names = ex["kp2d"], constants.COCO17_NAMES
    cut = int(kp[[names.index("left_hip"), names.index("right_hip")], 1].max()
              + 0.06 * np.ptp(kp[:, 1]))
    presence = blazepose(np.ascontiguousarray(ex["rgb"][:cut]))[0].coco17_presence()
    ankles = [names.index(f"{s}_ankle") for s in ("left", "right")]
    shoulders = [names.index(f"{s}_shoulder") for s in ("left", "right")]
    assert (presence[ankles] < 0.5).all() and (presence[shoulders] > 0.9).all(), presence


def test_tiles_cover_the_photo_at_each_scale():
    """Sides halve from the shorter side down to 3 x the smallest person searched for (150 px,
    or an eighth of the shorter side); each scale's tiles cover the photo, overlapping by at
    least half a tile."""
    assert multiscale.tile_sides(1280, 720) == [720, 450]
    assert multiscale.tile_sides(810, 1080) == [810, 450]
    assert multiscale.tile_sides(1920, 1080) == [1080, 540, 450]
    assert multiscale.tile_sides(4000, 3000) == [3000, 1500, 1125]   # 375 px people
    assert multiscale.tile_sides(420, 375) == [375]
    assert multiscale.tiles(480, 480) == [(0, 0, 450), (30, 0, 450), (0, 30, 450),
                                          (30, 30, 450)]      # the 480 one is the whole photo
    w, h = 1280, 720
    all_tiles = multiscale.tiles(w, h)
    for side in multiscale.tile_sides(w, h):
        cover = np.zeros((h, w), int)
        xs = sorted({x for x, _, s in all_tiles if s == side})
        ys = sorted({y for _, y, s in all_tiles if s == side})
        for x, y, s in all_tiles:
            if s == side:
                assert 0 <= x and x + s <= w and 0 <= y and y + s <= h
                cover[y:y + s, x:x + s] += 1
        assert cover.min() >= 1
        assert xs[0] == 0 and xs[-1] == w - side and np.diff(xs).max() <= side / 2
        assert ys[0] == 0 and ys[-1] == h - side
        assert len(xs) * len(ys) == sum(s == side for _, _, s in all_tiles)


def _landmarks(xy, visibility=1.0):
    return np.concatenate([xy, np.zeros((33, 1)), np.full((33, 2), visibility)], 1)


def test_same_person_by_landmarks_overlap_or_one_upside_down_inside_the_other():
    rng = np.random.default_rng(1)
    body = rng.uniform([0, 0], [100, 300], (33, 2)) + [400, 100]   # 300 px tall
    body[[0, 31]] = [[450, 100], [450, 400]]
    a = _landmarks(body)
    assert multiscale.body_size(a) == pytest.approx(300)
    near = _landmarks(body + rng.normal(0, 12, body.shape))
    assert multiscale.same_person(a, near, 1000, 600)
    # two readings of one person that guess its unseen parts differently: the boxes differ
    # (neither 0.8 inside the other), the seen landmarks agree
    a_legs, b_arm = a.copy(), near.copy()
    a_legs[25:33, 1] += 150
    b_arm[15:23, 0] += 150
    a_legs[25:33, 3] = b_arm[15:23, 3] = 0.1
    assert multiscale.contained(a_legs, b_arm, 1000, 600) < 0.8
    assert multiscale.same_person(a_legs, b_arm, 1000, 600)
    assert multiscale.same_person(a_legs, b_arm[multiscale.FLIP], 1000, 600)   # read mirrored
    beside = _landmarks(body + [110, 0])        # the next person, shoulder to shoulder
    assert not multiscale.same_person(a, beside, 1000, 600)
    upside_down = _landmarks(np.concatenate([450 + (body[:, :1] - 450) * 0.6,
                                             400 - (body[:, 1:] - 100) * 0.8], 1))
    assert multiscale.landmark_distance(a, upside_down) > 0.2 * 240
    assert multiscale.contained(a, upside_down, 1000, 600) == pytest.approx(1.0)
    assert multiscale.same_person(a, upside_down, 1000, 600)
    # a second, poorer reading of one person (t1.jpg's red shirt: face on his hair): half its
    # box inside the first's and its landmarks 0.21 of the size away, over SAME_PERSON alone
    shifted = _landmarks(body + [40, 50])
    assert multiscale.contained(a, shifted, 1000, 600) == pytest.approx(0.5, abs=0.05)
    assert 0.2 * 300 < multiscale.landmark_distance(a, shifted) < 0.35 * 300
    assert multiscale.same_person(a, shifted, 1000, 600)
    # a smaller person standing behind (t1.jpg: a woman behind a seated man): box inside
    # the man's, upright like him, landmarks far from his: a second person
    behind = _landmarks([400, 100] + (body - [400, 100]) * 0.5)
    assert multiscale.contained(a, behind, 1000, 600) > multiscale.CONTAINED
    assert multiscale.landmark_distance(a, behind) > 0.5 * 150
    assert multiscale.upright(a) and multiscale.upright(behind)
    assert not multiscale.upright(upside_down)
    assert not multiscale.same_person(a, behind, 1000, 600)
    # landmarks the model rates unseen are left out, unless fewer than MIN_COMMON are seen
    b = near.copy()
    b[:20, :2] += 200
    b[:20, 3] = 0.1
    assert multiscale.landmark_distance(a, b) < 0.2 * 300
    b[:, 3] = 0.1
    assert multiscale.landmark_distance(a, b) > 0.2 * 300
    # add_new keeps what is there and adds only new people, in the given order
    kept = multiscale.add_new([a], [near, beside, upside_down, beside], 1000, 600, lambda x: x)
    assert len(kept) == 2 and kept[0] is a and kept[1] is beside


def test_small_people_in_tiles_are_dropped():
    """bus_cut.png's case: a 97 x 80 px "person" read inside a coat in a 420 x 375 photo; the
    floor is min(150 px or an eighth of the shorter side, a third of the shorter side)."""
    def box(w, h):
        return _landmarks(np.array([[0, 0], [w, h]] + [[w / 2, h / 2]] * 31, np.float64))
    assert not multiscale.large_enough(box(97, 80), 420, 375)
    assert multiscale.large_enough(box(60, 130), 420, 375)         # 125 = a third of 375
    assert not multiscale.large_enough(box(60, 140), 1280, 720)
    assert multiscale.large_enough(box(60, 150), 1280, 720)
    assert not multiscale.large_enough(box(100, 370), 4000, 3000)  # 375 = 3000 / 8


def _people_in_a_row(indices, height, width=1500, photo_height=420):
    """Rendered people side by side on grey, each scaled to `height` px (its keypoints) and
    centred in its third of the photo: (rgb, [(17, 3) COCO-17 keypoints in photo pixels])."""
    photo = np.full((photo_height, width, 3), 120, np.uint8)
    truths = []
    for k, i in enumerate(indices):
        ex = scenes()[i]
        kp = ex["kp2d"].astype(np.float64)
        seen = kp[:, 2] > 0
        s = height / np.ptp(kp[seen, 1])
        small = cv2.resize(ex["rgb"], None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        centre = np.array([(k + 0.5) * width / len(indices), photo_height / 2])
        x0, y0 = (int(round(v)) for v in centre - kp[seen, :2].mean(0) * s)
        h, w = small.shape[:2]
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + w, width), min(y0 + h, photo_height)
        photo[ya:yb, xa:xb] = small[ya - y0:yb - y0, xa - x0:xb - x0]
        truths.append(np.concatenate([kp[:, :2] * s + [x0, y0], kp[:, 2:]], 1))
    return photo, truths


def _error(person, truth):
    """Median COCO-17 error (pixels) over the visible keypoints, the better of as-is and
    mirrored (a person seen from behind may come out mirrored)."""
    kp, visible = person.coco17(), truth[:, 2] == 2
    return min(np.median(np.linalg.norm(k[visible, :2] - truth[visible, :2], axis=1))
               for k in (kp, kp[list(constants.COCO17_FLIP_PERM)]))


def _each_found_once(people, truths, height):
    right = np.array([[_error(p, t) < 0.08 * height for t in truths] for p in people])
    assert len(people) == len(truths), [[round(_error(p, t)) for t in truths] for p in people]
    assert (right.sum(0) == 1).all() and (right.sum(1) == 1).all(), right


def test_several_small_people_are_each_found_once(blazepose):
    """Three people 220 px tall in a 1500 x 420 photo: on the whole photo (letterboxed to 224)
    they are ~33 px tall and the detector misses them; the tiles find each once, at the right
    place; the single-person call falls back to the tiles and gives one of them."""
    photo, truths = _people_in_a_row((0, 3, 6), 220)
    assert blazepose.people_from(photo, blazepose.detect(photo)) == []   # the whole photo
    _each_found_once(blazepose(photo), truths, 220)
    one = blazepose(photo, 1)
    assert len(one) == 1 and min(_error(one[0], t) for t in truths) < 0.08 * 220


def test_duplicates_from_the_tiles_are_merged(blazepose):
    """People 260 px tall, one seen from behind (scene 1): several tiles and scales find each
    person, some tiles read the one from behind upside down (a tile's detection turned 180
    degrees); each comes out once, right."""
    photo, truths = _people_in_a_row((1, 2, 4), 260)
    candidates = blazepose.tiled(photo)
    assert len(candidates) > len(truths)
    assert any(abs(c.roi.rotation) > 2.5 for c in candidates)        # upside down
    _each_found_once(blazepose(photo), truths, 260)


def test_tiles_run_only_when_the_whole_photo_gives_too_few(blazepose, monkeypatch):
    ex = scenes()[0]
    monkeypatch.setattr(blazepose, "tiled", lambda rgb: pytest.fail("tiles ran"))
    assert len(blazepose(ex["rgb"], 1)) == 1
