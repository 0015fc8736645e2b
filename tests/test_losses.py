"""pose_era.losses: each term zero at the ground truth, positive away from it, masked by has_*,
and equal to a float64 NumPy reference."""
import numpy as np
import pytest
import tensorflow as tf

from configs import common_pose
from pose_era import geometry, losses
from tiny_body import tiny_body_model

B, SIZE, L = 3, 96, 4


@pytest.fixture(scope="module")
def body():
    return tiny_body_model(num_markers=16)


@pytest.fixture(scope="module")
def case(body):
    """Ground truth = the mean body (zero betas, rest local pose) with random root and position,
    so the priors are zero at the ground truth too; outputs = exactly the ground truth."""
    rng = np.random.default_rng(0)
    aa = np.zeros((B, body.num_joints, 3), np.float32)
    aa[:, 0] = [np.pi, 0, 0] + rng.normal(0, 0.3, (B, 3))
    transl = np.stack([rng.uniform(-0.3, 0.3, B), rng.uniform(-1.2, -0.8, B),
                       rng.uniform(4, 6, B)], axis=1).astype(np.float32)
    betas = np.zeros((B, body.num_betas), np.float32)
    rotmats = geometry.axis_angle_to_matrix(aa)
    gt = body(betas, rotmats, transl)
    K = tf.constant(np.tile(np.array([[200.0, 0, 48], [0, 200, 48], [0, 0, 1]], np.float32),
                            (B, 1, 1)))
    kp2d = tf.concat([geometry.project(gt["coco17"], K), tf.ones((B, 17, 1))], axis=-1)
    ones = tf.ones((B,))
    inside = np.all((kp2d[..., :2] >= 0) & (kp2d[..., :2] < SIZE), axis=-1)
    assert inside.any(axis=1).all()  # the heatmap term sees only keypoints inside the crop
    targets = {"markers": gt["markers"], "has_markers": ones, "j3d": gt["h36m17"],
               "has_j3d": ones, "kp2d": kp2d, "betas": betas, "pose": aa, "transl": transl,
               "has_params": ones}
    outputs = {"markers_list": tf.stack([gt["markers"]] * L, axis=1), "markers": gt["markers"],
               "mesh_markers": gt["markers"], "h36m17": gt["h36m17"], "coco17": gt["coco17"],
               "vertices": gt["vertices"], "betas": tf.constant(betas), "rotmats": rotmats,
               "kp2d_dense": kp2d[..., :2], "kp2d_logits": gaussian_logits(kp2d, SIZE // 8)}
    # the aid's marker maps at the truth: Gaussians at the projected markers, and every cell's
    # location maps equal to the centred markers
    centred = gt["markers"] - tf.reduce_mean(gt["markers"], axis=1, keepdims=True)
    outputs["marker_logits"] = gaussian_logits(geometry.project(gt["markers"], K), SIZE // 8)
    outputs["marker_locations"] = tf.tile(centred[:, None, None], (1, SIZE // 8, SIZE // 8, 1, 1))
    return outputs, targets, K


def gaussian_logits(kp2d, cells, sigma=common_pose.loss_section().heatmap_sigma):
    """(B,cells,cells,N) log of a Gaussian at each keypoint on a grid over the SIZE crop."""
    centres = (np.arange(cells) + 0.5) * SIZE / cells
    kp = np.float64(kp2d)
    du = (centres[None, None, :, None] - kp[:, None, None, :, 0]) ** 2
    dv = (centres[None, :, None, None] - kp[:, None, None, :, 1]) ** 2
    return tf.constant(-(du + dv) / (2 * sigma ** 2), tf.float32)


def all_terms_config():
    """The default loss config with every term switched on."""
    config = common_pose.loss_section()
    for name in losses.TERMS:
        config[name] = config[name] or 1.0
    return config


def terms(outputs, targets, K, body):
    return losses.loss_terms(outputs, targets, K, SIZE, body, all_terms_config())


# Terms that a perturbation of one output moves besides its own (the rest must stay at zero).
ALSO_MOVES = {"markers3d": {"marker_distances", "markers2d"},
              "marker_distances": {"markers3d", "markers2d"},
              "markers2d": {"markers3d", "marker_distances"},
              "marker_centroid": {"markers2d"}}


def perturbed(outputs, name, rng):
    out = dict(outputs)
    noise = lambda x: x + rng.normal(0, 0.05, x.shape).astype(np.float32)  # noqa: E731
    if name in ("markers3d", "marker_distances", "markers2d"):  # zero-mean noise: centroid stays
        m = out["markers_list"].numpy()
        moved = noise(m)
        out["markers_list"] = moved - (moved - m).mean(axis=-2, keepdims=True)
    elif name == "marker_centroid":  # a rigid shift: only the centroid term sees it
        out["markers_list"] = out["markers_list"].numpy() + np.float32([0.05, -0.02, 0.3])
    elif name == "marker_mesh":
        out["markers"] = noise(out["markers"].numpy())
    elif name == "joints3d":  # not the pelvis: the vertex term aligns on it
        h = out["h36m17"].numpy()
        out["h36m17"] = np.concatenate([h[:, :1], noise(h[:, 1:])], axis=1)
    elif name == "vertices":
        out["vertices"] = noise(out["vertices"].numpy())
    elif name == "reproj":
        out["coco17"] = noise(out["coco17"].numpy())
    elif name == "dense2d":
        out["kp2d_dense"] = out["kp2d_dense"] + rng.normal(0, 3.0, (B, 17, 2)).astype(np.float32)
    elif name == "dense2d_heatmap":
        out["kp2d_logits"] = out["kp2d_logits"] + rng.normal(0, 1.0, out["kp2d_logits"].shape)
    elif name == "marker_heatmap":
        out["marker_logits"] = out["marker_logits"] + rng.normal(0, 1.0, out["marker_logits"].shape)
    elif name == "marker_locations":
        out["marker_locations"] = noise(out["marker_locations"].numpy())
    elif name == "shape_prior":
        out["betas"] = noise(out["betas"].numpy())
    elif name == "pose_prior":
        out["rotmats"] = geometry.rot6d_to_matrix(noise(geometry.matrix_to_rot6d(out["rotmats"])))
    return out


def test_every_term_is_zero_at_the_ground_truth(case, body):
    outputs, targets, K = case
    values = terms(outputs, targets, K, body)
    assert set(values) == set(losses.TERMS)
    for name, (value, mask) in values.items():
        np.testing.assert_allclose(value, 0.0, atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(mask, 1.0)


@pytest.mark.parametrize("name", losses.TERMS)
def test_each_term_is_positive_away_from_the_ground_truth(case, body, name):
    outputs, targets, K = case
    values = terms(perturbed(outputs, name, np.random.default_rng(1)), targets, K, body)
    assert (values[name][0].numpy() > 1e-4).all(), name
    for other, (value, _) in values.items():
        if other != name and other not in ALSO_MOVES.get(name, ()):
            np.testing.assert_allclose(value, 0.0, atol=1e-6, err_msg=f"{name} moved {other}")


def test_terms_match_a_float64_numpy_reference(case, body):
    outputs, targets, K = case
    rng = np.random.default_rng(2)
    out = perturbed(perturbed(outputs, "markers3d", rng), "reproj", rng)
    out = perturbed(perturbed(out, "joints3d", rng), "pose_prior", rng)
    values = terms(out, targets, K, body)
    ml, gm = np.float64(out["markers_list"]), np.float64(targets["markers"])
    mlc = ml - ml.mean(axis=-2, keepdims=True)
    gmc = gm - gm.mean(axis=-2, keepdims=True)
    ref = np.linalg.norm(mlc - gmc[:, None], axis=-1).mean(axis=(1, 2))
    np.testing.assert_allclose(values["markers3d"][0], ref, rtol=1e-5)
    ref = np.linalg.norm(ml.mean(-2) - gm.mean(-2)[:, None], axis=-1).mean(-1)
    np.testing.assert_allclose(values["marker_centroid"][0], ref, atol=1e-6)  # ~0: centroid kept
    dist = lambda m: np.linalg.norm(m[..., :, None, :] - m[..., None, :, :], axis=-1)  # noqa: E731
    ref = np.abs(dist(ml) - dist(gm)[:, None]).mean(axis=(-2, -1)).mean(-1)
    np.testing.assert_allclose(values["marker_distances"][0], ref, rtol=1e-5)
    eps = common_pose.loss_section().reproj_eps
    k = np.float64(K)[:, None]
    project = lambda m: (lambda h: h[..., :2] / h[..., 2:])(  # noqa: E731
        np.einsum("blij,blnj->blni", k, m))
    r = (project(ml) - project(gm[:, None])) / SIZE
    ref = (np.sqrt((r ** 2).sum(-1) + eps ** 2) - eps).mean(-1).mean(-1)
    np.testing.assert_allclose(values["markers2d"][0], ref, rtol=1e-4)
    p, t = np.float64(out["h36m17"]), np.float64(targets["j3d"])
    ref = np.linalg.norm((p - p[:, :1]) - (t - t[:, :1]), axis=-1).mean(-1)
    np.testing.assert_allclose(values["joints3d"][0], ref, rtol=1e-5)
    pts, k = np.float64(out["coco17"]), np.float64(K)
    uv = np.einsum("bij,bnj->bni", k, pts)
    r = (uv[..., :2] / uv[..., 2:] - np.float64(targets["kp2d"])[..., :2]) / SIZE
    ref = (np.sqrt((r ** 2).sum(-1) + eps ** 2) - eps).mean(-1)
    np.testing.assert_allclose(values["reproj"][0], ref, rtol=1e-4)
    rot = np.float64(out["rotmats"])[:, 1:]
    cos = (np.trace(rot, axis1=-2, axis2=-1) - 1) / 2
    np.testing.assert_allclose(values["pose_prior"][0], (4 * (1 - cos)).mean(-1), rtol=1e-4,
                               atol=1e-7)


def test_flags_mask_terms_and_visibility_weights_keypoints(case, body):
    outputs, targets, K = case
    out = perturbed(perturbed(outputs, "markers3d", np.random.default_rng(3)), "reproj",
                    np.random.default_rng(4))
    t = dict(targets, has_markers=tf.constant([1.0, 0.0, 1.0]))
    kp = targets["kp2d"].numpy()
    kp[1, :, 2] = 0.0            # example 1: no visible keypoint -> no 2D term
    kp[2, 5:, 2] = 0.0           # example 2: only the first 5 keypoints count
    t["kp2d"] = tf.constant(kp)
    config = common_pose.loss_section()
    per_example, metrics = losses.pose_loss(out, t, K, SIZE, body, config)
    values = losses.loss_terms(out, t, K, SIZE, body, config)
    np.testing.assert_array_equal(values["markers3d"][1], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(values["reproj"][1], [1.0, 0.0, 1.0])
    expected = sum(config[n] * values[n][0] * values[n][1] for n in values)
    np.testing.assert_allclose(per_example, expected, rtol=1e-6)
    assert float(metrics["loss/markers3d"]) == pytest.approx(
        float(tf.reduce_mean(tf.gather(values["markers3d"][0], [0, 2]))), rel=1e-6)
    only5 = dict(out, coco17=tf.concat([out["coco17"][:, :5], outputs["coco17"][:, 5:]], 1))
    np.testing.assert_allclose(losses.loss_terms(only5, t, K, SIZE, body, config)["reproj"][0][2],
                               values["reproj"][0][2], rtol=1e-6)
    config.markers3d = 0.0       # weight 0: the term is not computed at all
    assert "markers3d" not in losses.loss_terms(out, t, K, SIZE, body, config)


def test_gradients_are_finite_at_the_ground_truth(case, body):
    outputs, targets, K = case
    out = {k: tf.Variable(v) for k, v in outputs.items()}
    with tf.GradientTape() as tape:
        total, _ = losses.pose_loss(out, targets, K, SIZE, body, common_pose.loss_section())
        total = tf.reduce_sum(total)
    for name, grad in zip(out, tape.gradient(total, list(out.values()))):
        if grad is not None:
            assert np.isfinite(grad.numpy()).all(), name


def test_heatmap_divergence_of_a_shifted_gaussian_is_its_closed_form():
    """KL between two Gaussians of one sigma, d pixels apart, is d^2 / (2 sigma^2) (a grid much
    wider than sigma); invisible keypoints and keypoints outside the crop are left out."""
    sigma, cells, stride = 8.0, 64, 4.0
    kp = np.array([[[128.0, 100.0, 1.0], [60.0, 200.0, 1.0], [-5.0, 30.0, 1.0],
                    [90.0, 90.0, 0.0]]])
    shift = np.array([6.0, -10.0])
    moved = kp.copy()
    moved[..., :2] += shift
    size = cells * stride
    centres = (np.arange(cells) + 0.5) * stride
    logits = -((centres[None, None, :, None] - moved[:, None, None, :, 0]) ** 2
               + (centres[None, :, None, None] - moved[:, None, None, :, 1]) ** 2) / (2 * sigma ** 2)
    value = losses.heatmap_divergence(tf.constant(logits, tf.float32) + 3.0,  # any offset
                                      tf.constant(kp, tf.float32), size, sigma)
    np.testing.assert_allclose(value, [np.sum(shift ** 2) / (2 * sigma ** 2)], rtol=1e-4)


def test_location_map_error_of_a_linear_map_is_its_closed_form():
    """Location maps wrong by a (u - u_k) in x around point k: the Gaussian-weighted distance is
    a E|u - u_k| = a sigma sqrt(2/pi) (a grid much wider than sigma); a constant offset d gives
    |d|; points outside the crop or with weight 0 are left out."""
    sigma, cells, stride, a = 8.0, 256, 1.0, 0.01
    size = cells * stride
    kp = np.array([[[128.0, 100.0, 1.0], [60.0, 200.0, 1.0], [-5.0, 30.0, 1.0],
                    [90.0, 90.0, 0.0]]])
    points = np.random.default_rng(3).normal(0, 0.3, (1, 4, 3))
    u = (np.arange(cells) + 0.5) * stride
    wrong_x = a * (u[None, None, :, None] - kp[:, None, None, :, 0])          # (1,1,W,N)
    locations = np.broadcast_to(points[:, None, None], (1, cells, cells, 4, 3)).copy()
    locations[..., 0] += wrong_x
    value = losses.location_map_error(tf.constant(locations, tf.float32),
                                      tf.constant(kp, tf.float32),
                                      tf.constant(points, tf.float32), size, sigma)
    np.testing.assert_allclose(value, [a * sigma * np.sqrt(2 / np.pi)], rtol=2e-3)
    shift = np.array([0.03, -0.04, 0.0])
    value = losses.location_map_error(
        tf.constant(np.broadcast_to(points[:, None, None] + shift, locations.shape), tf.float32),
        tf.constant(kp, tf.float32), tf.constant(points, tf.float32), size, sigma)
    np.testing.assert_allclose(value, [0.05], rtol=1e-5)
