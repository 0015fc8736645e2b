"""Keypoint tokens (models/keypoint_tokens.py) against closed forms, and how the head reads them."""
import numpy as np
import pytest
import tensorflow as tf

from models import pose_net
from models.keypoint_tokens import KeypointTokens
from test_thundr import camera, make_config
from tiny_body import tiny_body_model


def test_a_peaked_heatmap_reads_its_cell():
    """A heatmap with all its mass on cell (row 2, col 5) of a 4x8 map: the pooled feature is
    that cell's, the position its centre ((5.5/8 - 1/2, 2.5/4 - 1/2)), the spread ~0."""
    features = tf.random.normal((1, 4, 8, 3), seed=1)
    logits = np.full((1, 4, 8, 2), -1e4, np.float32)
    logits[0, 2, 5, 0] = 0.0
    logits[0, 0, 0, 1] = 0.0
    tokens = KeypointTokens()([tf.constant(logits), features]).numpy()
    assert tokens.shape == (1, 2, 3 + 4)
    np.testing.assert_allclose(tokens[0, 0, :3], features[0, 2, 5], atol=1e-6)
    np.testing.assert_allclose(tokens[0, 1, :3], features[0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(tokens[0, 0, 3:5], [5.5 / 8 - 0.5, 2.5 / 4 - 0.5], atol=1e-6)
    np.testing.assert_allclose(tokens[0, 1, 3:5], [0.5 / 8 - 0.5, 0.5 / 4 - 0.5], atol=1e-6)
    np.testing.assert_allclose(tokens[0, :, 5:], 0.0, atol=1e-3)


def test_a_flat_heatmap_gives_the_mean_feature_the_centre_and_the_uniform_spread():
    """Uniform over n cells of width 1/n: mean 0, standard deviation sqrt((n^2 - 1) / 12) / n."""
    features = tf.random.normal((2, 4, 6, 5), seed=2)
    tokens = KeypointTokens()([tf.zeros((2, 4, 6, 3)), features]).numpy()
    np.testing.assert_allclose(tokens[:, :, :5],
                               np.broadcast_to(features.numpy().mean((1, 2))[:, None], (2, 3, 5)),
                               atol=1e-5)
    np.testing.assert_allclose(tokens[..., 5:7], 0.0, atol=1e-6)
    expected = [np.sqrt((n * n - 1) / 12) / n for n in (6, 4)]
    np.testing.assert_allclose(tokens[..., 7:], np.broadcast_to(expected, (2, 3, 2)), atol=1e-4)


def test_the_head_reads_one_token_per_keypoint_and_the_heatmaps_get_its_gradient():
    body = tiny_body_model(num_markers=16)
    config = make_config(depth=1)
    config.model.head.keypoint_tokens = True
    with pytest.raises(ValueError, match="set model.dense2d.enabled=true"):
        pose_net.build_pose_model(config, body)
    config.model.dense2d.enabled = True
    model = pose_net.build_pose_model(config, body)
    head = model.get_layer("head")
    assert head.keypoint_embedding.shape == (17, config.model.head.width)
    # 3x3 image tokens + the [markers] token + 17 keypoint tokens mix in the Mixer's token MLP.
    assert head.block.token_mlp.out == 3 * 3 + 1 + 17
    corr = head.corr.fc2   # zero-initialised: give the markers a dependence on the tokens
    corr.kernel.assign(tf.random.normal(corr.kernel.shape, stddev=0.01, seed=7))
    logits_layer = model.get_layer("dense2d_logits")
    with tf.GradientTape() as tape:
        out = model({"image": tf.random.uniform((2, 96, 96, 3), seed=6), "K": camera(2, 96)},
                    training=True)
        loss = tf.reduce_sum(tf.square(out["markers"]))
    assert float(tf.reduce_max(tf.abs(tape.gradient(loss, logits_layer.kernel)))) > 0


def _geometry(points_px, size, spread=0.01):
    """KeypointTokens' geometry columns for keypoints at `points_px` (B,N,2) in a crop of `size`."""
    uv = points_px / size - 0.5
    return tf.concat([uv, tf.fill(tf.shape(uv), spread)], -1)


def test_lifter_features_are_free_of_the_bodys_place_and_size_in_the_image():
    """Moving the keypoints in the image or scaling them about their mean changes only the mean
    ray and the log spread (by log of the scale), not the normalised 2D pose."""
    from models.lifter import KeypointLifter
    size, n = 160, 17
    lifter = KeypointLifter(8, image_size=size, hidden=16)
    K = camera(1, size, focal=300.0)
    points = tf.random.uniform((1, n, 2), 40, 120, seed=3)
    base = lifter.features(_geometry(points, size), K).numpy()
    centre = tf.reduce_mean(points, 1, keepdims=True)
    moved = lifter.features(_geometry(points + [[[11.0, -7.0]]], size), K).numpy()
    scaled = lifter.features(_geometry(centre + 0.5 * (points - centre), size, 0.005), K).numpy()
    pose = slice(0, 4 * n)
    np.testing.assert_allclose(moved[:, pose], base[:, pose], atol=1e-4)
    np.testing.assert_allclose(scaled[:, pose], base[:, pose], atol=1e-4)
    np.testing.assert_allclose(moved[0, 4 * n:4 * n + 2] - base[0, 4 * n:4 * n + 2],
                               [11.0 / 300, -7.0 / 300], atol=1e-5)
    np.testing.assert_allclose(scaled[0, -1] - base[0, -1], np.log(0.5), atol=1e-4)


def test_an_untrained_lifter_starts_at_the_mean_body_and_then_moves_the_start():
    body = tiny_body_model(num_markers=16)
    config = make_config(depth=2)
    config.model.dense2d.enabled = True
    config.model.head.lift_hidden = 32
    with pytest.raises(ValueError, match="set model.head.keypoint_tokens=true too"):
        pose_net.build_pose_model(config, body)
    config.model.head.keypoint_tokens = True
    lifted = pose_net.build_pose_model(config, body)
    config.model.head.lift_hidden = 0
    plain = pose_net.build_pose_model(config, body)
    inputs = {"image": tf.random.uniform((2, 96, 96, 3), seed=9), "K": camera(2, 96)}
    start = lambda model: model(inputs)["markers_list"][:, 0]  # noqa: E731  (zero corrections)
    np.testing.assert_allclose(start(lifted), start(plain), atol=1e-6)
    out = lifted.get_layer("head").lifter.out.fc2
    out.kernel.assign(tf.random.normal(out.kernel.shape, stddev=0.01, seed=4))
    assert float(tf.reduce_max(tf.abs(start(lifted) - start(plain)))) > 1e-4
