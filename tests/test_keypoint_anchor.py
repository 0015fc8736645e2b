"""The keypoint-fed network's translation solved from its keypoint input
(models/keypoint_anchor.py): the closed form recovers a known shift for pinhole and general
projections, agrees with a second formulation (SPIN's estimate_translation) under noise, keeps
the network's translation when the keypoints cannot place the body, and moves every 3D output
of a model together."""
import numpy as np
import tensorflow as tf

from models.keypoint_anchor import MIN_KEYPOINTS, solve_shift

SIZE = 160


def body(rng, batch, depth=4.0):
    """(B, 17, 3) joints of a 1.7 m tall random figure about `depth` m in front of the camera."""
    joints = rng.normal(0.0, [0.25, 0.5, 0.15], (batch, 17, 3))
    joints[..., 2] += depth
    return joints.astype(np.float32)


def pinhole(batch, focal=300.0):
    K = np.array([[focal, 0, SIZE / 2], [0, focal * 1.1, SIZE / 2 + 5], [0, 0, 1]], np.float32)
    return np.repeat(K[None], batch, 0)


def rotated(batch, angle=0.4, scale=1.2, focal=300.0):
    """A crop's projection after augmentation's rotation and magnification (A K Q^T)."""
    c, s = np.cos(angle), np.sin(angle)
    q = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    a = np.array([[scale * c, -scale * s, 0], [scale * s, scale * c, 0], [0, 0, 1]])
    half = np.array([[1, 0, SIZE / 2], [0, 1, SIZE / 2], [0, 0, 1]])
    a = half @ a @ np.linalg.inv(half)
    return np.repeat((a @ pinhole(1, focal)[0] @ q.T)[None], batch, 0).astype(np.float32)


def keypoint_input(points, K, flag):
    p = np.einsum("bij,bkj->bki", K, points)
    uv = p[..., :2] / p[..., 2:] / SIZE
    return np.concatenate([uv * flag[..., None], flag[..., None]], -1).astype(np.float32)


def test_a_known_shift_is_recovered_for_pinhole_and_rotated_projections():
    rng = np.random.default_rng(0)
    joints = body(rng, 6)
    shift = rng.normal(0.0, [0.3, 0.3, 1.0], (6, 3)).astype(np.float32)
    flag = (rng.uniform(size=(6, 17)) > 0.3).astype(np.float32)
    for K in (pinhole(6), rotated(6)):
        kp = keypoint_input(joints + shift[:, None], K, flag)
        d = solve_shift(joints, kp, K, SIZE).numpy()
        np.testing.assert_allclose(d, shift, atol=2e-3)


def spin_translation(joints, uv, weight, fx, fy, cx, cy):
    """SPIN's estimate_translation_np (its utils), rewritten for a shift of given joints: the
    weighted least squares of fx (X + dx) - (u - cx)(Z + dz) = 0 and likewise for v."""
    rows, rhs = [], []
    for (x, y, z), (u, v), w in zip(joints, uv, weight):
        w = np.sqrt(w)
        rows += [w * np.array([fx, 0, -(u - cx)]), w * np.array([0, fy, -(v - cy)])]
        rhs += [w * ((u - cx) * z - fx * x), w * ((v - cy) * z - fy * y)]
    return np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]


def test_with_noisy_keypoints_it_is_the_least_squares_of_spins_formulation():
    """For a pinhole K with fx = fy, the scaled equations are SPIN's divided by f, so the two
    least-squares solutions agree (up to the tiny ridge) for any keypoint error."""
    rng = np.random.default_rng(1)
    joints = body(rng, 4)
    K = pinhole(4)
    K[:, 1, 1] = K[:, 0, 0]
    flag = np.ones((4, 17), np.float32)
    flag[:, :3] = 0
    kp = keypoint_input(joints + 0.2, K, flag)
    kp[..., :2] += rng.normal(0.0, 0.02, kp[..., :2].shape) * flag[..., None]
    d = solve_shift(joints, kp, K, SIZE).numpy()
    for b in range(4):
        fx, cx, cy = K[b, 0, 0], K[b, 0, 2], K[b, 1, 2]
        want = spin_translation(joints[b], kp[b, :, :2] * SIZE, flag[b], fx, fx, cx, cy)
        np.testing.assert_allclose(d[b], want, atol=1e-3)


def test_too_few_keypoints_or_a_body_behind_the_camera_keep_the_networks_translation():
    rng = np.random.default_rng(2)
    joints = body(rng, 2)
    K = pinhole(2)
    flag = np.zeros((2, 17), np.float32)
    flag[0, :MIN_KEYPOINTS - 1] = 1          # too few
    flag[1] = 1
    kp = keypoint_input(joints + np.array([0.0, 0.0, -3.9], np.float32), K, flag)
    d = solve_shift(joints, kp, K, SIZE).numpy()
    np.testing.assert_array_equal(d, 0.0)     # second: 3.9 m nearer puts joints behind 0.2 m
    flag[0, :MIN_KEYPOINTS] = 1
    kp = keypoint_input(joints + 0.1, K, flag)
    assert np.abs(solve_shift(joints, kp, K, SIZE).numpy()[0] - 0.1).max() < 2e-3


def test_the_anchored_model_moves_every_3d_output_onto_the_keypoints(tmp_path):
    """A tiny keypoint-fed model with and without the anchor, same weights: at inference the
    anchored one's 3D outputs are the plain one's plus one shift per example, and its COCO-17
    joints project onto the given keypoints (exact, noise-free keypoints of a shifted copy of
    its own body); in training the shift is 0."""
    from models import pose_net
    from tests.test_keypoint_input import _inputs, _kp_model
    from tests.tiny_pose_workdir import IMAGE_SIZE, tiny_overrides
    from training import config as config_lib
    config = config_lib.load_config("mixer_64:cpu,kpin")
    config_lib.apply_overrides(config, tiny_overrides(tmp_path))
    assert config.model.keypoint_input.anchor
    config, anchored = _kp_model(config)
    with config.unlocked():
        config.model.keypoint_input.anchor = False
    _, plain = _kp_model(config)
    plain.set_weights(anchored.get_weights())
    inputs = _inputs(2, IMAGE_SIZE, 3)
    flag = np.ones((2, 17), np.float32)
    dummy = {**inputs, pose_net.KEYPOINTS: tf.zeros((2, 17, 3))}
    joints = plain(dummy, training=False)["coco17"].numpy()
    target = joints + np.array([0.05, -0.03, 0.4], np.float32)
    K = inputs["K"].numpy()
    p = np.einsum("bij,bkj->bki", K, target)
    kp = np.concatenate([p[..., :2] / p[..., 2:] / IMAGE_SIZE, flag[..., None]], -1)
    inputs[pose_net.KEYPOINTS] = tf.constant(kp, tf.float32)
    out_plain = plain(inputs, training=False)
    out = anchored(inputs, training=False)
    d = out["shift"].numpy()
    np.testing.assert_allclose(d, np.tile([0.05, -0.03, 0.4], (2, 1)), atol=2e-3)
    for key in ("markers", "vertices", "joints", "mesh_markers", "h36m17", "coco17", "transl"):
        moved = out_plain[key].numpy() + (d[:, None] if out[key].ndim == 3 else d)
        np.testing.assert_allclose(out[key].numpy(), moved, atol=1e-5)
    np.testing.assert_allclose(out["markers_list"].numpy(),
                               out_plain["markers_list"].numpy() + d[:, None, None], atol=1e-5)
    trained = anchored(inputs, training=True)
    np.testing.assert_array_equal(trained["shift"], 0.0)
    np.testing.assert_allclose(trained["coco17"], plain(inputs, training=True)["coco17"],
                               atol=1e-6)
    got = np.einsum("bij,bkj->bki", K, out["coco17"].numpy())
    np.testing.assert_allclose(got[..., :2] / got[..., 2:], p[..., :2] / p[..., 2:], atol=0.05)
