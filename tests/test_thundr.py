"""The pose network: backbones, shared-weight head, marker refinement from the mean body, sizes."""
import numpy as np
import keras
import ml_collections
import pytest
import tensorflow as tf

from configs import common_pose
from models import backbones, pose_net
from models.thundr import sinusoidal_2d
from pose_era import geometry, losses
from tiny_body import tiny_body_model

# The ERA supplement's Table 8 (millions of parameters, MarkerPoser included).
TABLE8 = {("mobilenet_v2", "mixer", 64): 4.1, ("mobilenet_v2", "mixer", 256): 5.1,
          ("mobilenet_v2", "transformer", 64): 3.5, ("mobilenet_v2", "transformer", 256): 4.3,
          ("resnet50", "transformer", 256): 25.0}


def make_config(size=96, kind="mixer", width=64, activation="relu", depth=4, backbone="mobilenet_v2",
                num_markers=16):
    c = ml_collections.ConfigDict()
    c.model = common_pose.model_section()
    c.model.backbone.name = backbone
    c.model.head.kind, c.model.head.width, c.model.head.depth = kind, width, depth
    c.model.activation, c.model.num_markers = activation, num_markers
    c.data = ml_collections.ConfigDict({"image_size": size})
    return c


def camera(batch, size, focal=None, cx=None, cy=None):
    f = 2.0 * size if focal is None else focal
    K = np.array([[f, 0, size / 2 if cx is None else cx], [0, f, size / 2 if cy is None else cy],
                  [0, 0, 1]], np.float32)
    return tf.constant(np.tile(K, (batch, 1, 1)))


@pytest.fixture(scope="module")
def body():
    return tiny_body_model(num_markers=16)


def test_backbone_feature_map_and_weight_errors(tmp_path, monkeypatch):
    net = backbones.build_backbone("mobilenet_v2", 96)
    assert net(tf.zeros((1, 96, 96, 3))).shape == (1, 3, 3, 1280)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mobilenet_v2_weights_tf_dim_ordering.*no_top"):
        backbones.build_backbone("mobilenet_v2", 96, "imagenet")
    with pytest.raises(FileNotFoundError, match="no such file"):
        backbones.build_backbone("resnet50", 96, str(tmp_path / "missing.h5"))
    with pytest.raises(ValueError, match="backbone.name"):
        backbones.build_backbone("vgg16", 96)
    # A weights file is really loaded: save one net's weights, load them into a fresh build.
    path = tmp_path / "mnv2.weights.h5"
    net.get_layer(index=2).save_weights(path)
    again = backbones.build_backbone("mobilenet_v2", 96, str(path))
    x = tf.random.uniform((1, 96, 96, 3), seed=1)
    np.testing.assert_allclose(again(x), net(x), atol=1e-5)


def test_backbone_taps_return_the_finer_maps_in_order():
    net = backbones.build_backbone("mobilenet_v2", 96, taps=(8, 16))
    shapes = [tuple(t.shape) for t in net(tf.zeros((1, 96, 96, 3)))]
    assert shapes == [(1, 3, 3, 1280), (1, 12, 12, 192), (1, 6, 6, 576)]
    with pytest.raises(ValueError, match="offers strides 8, 16"):
        backbones.build_backbone("mobilenet_v2", 96, taps=(4,))


def test_stride16_tokens_feed_the_head_from_the_finer_map(body):
    """token_stride=16: the head reads (S/16)^2 tokens, and its markers depend on the merged
    stride-16 map (a gradient reaches its projection); 32 keeps the paper's (S/32)^2 tokens."""
    config = make_config(depth=1)
    assert pose_net.build_pose_model(config, body).get_layer("head").grid == (3, 3)
    config.model.head.token_stride = 16
    model = pose_net.build_pose_model(config, body)
    assert model.get_layer("head").grid == (6, 6)
    fine = model.get_layer("tokens16_fine")
    assert fine.kernel.shape == (1, 1, 576, config.model.head.token_channels)
    corr = model.get_layer("head").corr.fc2   # zero-initialised: markers start independent
    corr.kernel.assign(tf.random.normal(corr.kernel.shape, stddev=0.01, seed=7))
    with tf.GradientTape() as tape:
        out = model({"image": tf.random.uniform((2, 96, 96, 3), seed=6), "K": camera(2, 96)},
                    training=True)
        loss = tf.reduce_sum(tf.square(out["markers"]))
    assert float(tf.reduce_max(tf.abs(tape.gradient(loss, fine.kernel)))) > 0
    config.model.head.token_stride = 24
    with pytest.raises(ValueError, match="token_stride=24 is not supported; use 32 or 16"):
        pose_net.build_pose_model(config, body)


@pytest.mark.parametrize("kind", ["mixer", "transformer"])
def test_output_shapes(body, kind):
    model = pose_net.build_pose_model(make_config(kind=kind), body)
    out = model({"image": tf.random.uniform((2, 96, 96, 3)), "K": camera(2, 96)})
    j, k, v = body.num_joints, body.num_markers, body.num_vertices
    expected = {"markers_list": (2, 4, k, 3), "markers": (2, k, 3), "rot6d": (2, j, 6),
                "rotmats": (2, j, 3, 3), "betas": (2, body.num_betas), "transl": (2, 3),
                "vertices": (2, v, 3), "joints": (2, j, 3), "mesh_markers": (2, k, 3),
                "h36m17": (2, 17, 3), "coco17": (2, 17, 3)}
    assert {name: tuple(t.shape) for name, t in out.items()} == expected


@pytest.mark.parametrize("context", [False, True])
def test_dense2d_aid_and_where_its_heatmap_gradient_reaches(body, context):
    """The aid's outputs; with `context` its heatmap loss also trains the backbone's last layer
    (the one the marker head reads), without it that layer gets no gradient from the aid."""
    config = make_config(depth=1)
    config.model.dense2d.enabled, config.model.dense2d.context = True, context
    model = pose_net.build_pose_model(config, body)
    images = tf.random.uniform((2, 96, 96, 3), seed=4)
    kp2d = tf.concat([tf.random.uniform((2, 17, 2), 10, 86, seed=5), tf.ones((2, 17, 1))], -1)
    last = model.get_layer("backbone").get_layer("mobilenetv2_1.00_96").get_layer("Conv_1")
    with tf.GradientTape() as tape:
        out = model({"image": images, "K": camera(2, 96)}, training=True)
        loss = tf.reduce_mean(losses.heatmap_divergence(out["kp2d_logits"], kp2d, 96, 8.0))
    assert out["kp2d_dense"].shape == (2, 17, 2) and out["kp2d_logits"].shape == (2, 12, 12, 17)
    grad = tape.gradient(loss, last.kernel)
    assert (grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0) == context


def test_dense2d_marker_maps_one_heatmap_and_xyz_location_maps_per_marker(body):
    config = make_config(depth=1)
    config.model.dense2d.enabled = config.model.dense2d.markers = True
    out = pose_net.build_pose_model(config, body)(
        {"image": tf.random.uniform((2, 96, 96, 3), seed=8), "K": camera(2, 96)})
    k = body.num_markers
    assert out["marker_logits"].shape == (2, 12, 12, k)
    assert out["marker_locations"].shape == (2, 12, 12, k, 3)


def test_parameter_counts_match_table8():
    """Built at 480x480 (the token count sets the Mixer's size) with 64 markers, weights=None."""
    body = tiny_body_model(num_markers=64)
    for (backbone, kind, width), millions in TABLE8.items():
        model = pose_net.build_pose_model(
            make_config(480, kind, width, backbone=backbone, num_markers=64), body)
        counts = pose_net.count_params(model)
        assert counts["total"] == counts["backbone"] + counts["head"] + counts["markerposer"]
        assert abs(counts["total"] / (millions * 1e6) - 1) < 0.15, (backbone, kind, width, counts)
        assert 0.75e6 < counts["markerposer"] < 1.05e6
        keras.backend.clear_session()


@pytest.mark.parametrize("kind", ["mixer", "transformer"])
def test_one_block_shared_over_the_depth(body, kind):
    one = pose_net.build_pose_model(make_config(kind=kind, depth=1), body)
    four = pose_net.build_pose_model(make_config(kind=kind, depth=4), body)
    assert len(one.trainable_variables) == len(four.trainable_variables)
    assert one.count_params() == four.count_params()
    head = four.get_layer("head")
    block = head.block
    calls = []
    original = block.call
    block.call = lambda *a, **kw: calls.append(1) or original(*a, **kw)
    four({"image": tf.zeros((1, 96, 96, 3)), "K": camera(1, 96)})
    assert len(calls) == 4
    # The block's weights are the head's only Transformer/Mixer weights (one copy).
    block_ids = {id(v) for v in block.weights}
    assert all(id(v) in block_ids for v in head.weights if "shared_block" in v.path)


def test_refinement_starts_from_the_mean_body_filling_the_crop(body):
    size, fill = 96, 0.8
    config = make_config(size)
    config.model.init_fill = fill
    model = pose_net.build_pose_model(config, body)
    K = tf.concat([camera(1, size), camera(1, size, focal=300.0, cx=40.0, cy=60.0)], axis=0)
    out = model({"image": tf.random.uniform((2, size, size, 3)), "K": K})
    m0 = out["markers_list"][:, 0]
    for step in range(1, 4):  # zero-initialised corrections: every step is still M_0
        np.testing.assert_array_equal(out["markers_list"][:, step], m0)
    # M_0 is the mean body (the tiny body is SMPL-framed: upright = diag(1,-1,-1)) translated.
    rot = np.tile(np.eye(3, dtype=np.float32), (2, body.num_joints, 1, 1))
    rot[:, 0] = np.diag([1.0, -1.0, -1.0])
    at_origin = body(tf.zeros((2, body.num_betas)), rot, tf.zeros((2, 3)))
    shift = tf.reduce_mean(m0 - at_origin["markers"], axis=1)
    np.testing.assert_allclose(m0, at_origin["markers"] + shift[:, None], atol=1e-5)
    # ... placed so that its mesh fills `fill` of the crop, centred in it (up to the perspective
    # of the body's own depth, ~1 % here).
    uv = geometry.project(at_origin["vertices"] + shift[:, None], K).numpy()
    lo, hi = uv.min(axis=1), uv.max(axis=1)
    np.testing.assert_allclose((lo + hi) / 2, size / 2, atol=0.5)
    np.testing.assert_allclose((hi - lo).max(axis=1), fill * size, rtol=0.02)


def test_era_activation_builds_and_runs(body):
    model = pose_net.build_pose_model(make_config(activation="era", kind="transformer"), body)
    out = model({"image": tf.random.uniform((1, 96, 96, 3)), "K": camera(1, 96)})
    assert np.isfinite(out["vertices"].numpy()).all()
    assert any("era" in v.path.lower() for v in model.get_layer("head").weights)


def test_training_steps_reduce_the_loss_on_a_fixed_batch(body):
    """Ground truth from the tiny body: a few Adam steps on one batch lower the total loss."""
    size, batch = 64, 2
    model = pose_net.build_pose_model(make_config(size, kind="transformer"), body)
    K = camera(batch, size, focal=130.0)
    rng = np.random.default_rng(0)
    aa = rng.normal(0, 0.3, (batch, body.num_joints, 3)).astype(np.float32)
    aa[:, 0] = [np.pi, 0, 0]
    betas = rng.normal(0, 1, (batch, body.num_betas)).astype(np.float32)
    transl = np.array([[0.1, -0.9, 5.0], [-0.2, -1.1, 6.0]], np.float32)
    gt = body(betas, geometry.axis_angle_to_matrix(aa), transl)
    kp2d = tf.concat([geometry.project(gt["coco17"], K), tf.ones((batch, 17, 1))], axis=-1)
    ones = tf.ones((batch,))
    targets = {"markers": gt["markers"], "has_markers": ones, "j3d": gt["h36m17"],
               "has_j3d": ones, "kp2d": kp2d, "betas": betas, "pose": aa, "transl": transl,
               "has_params": ones}
    inputs = {"image": tf.random.uniform((batch, size, size, 3), seed=3), "K": K}
    opt = keras.optimizers.Adam(1e-3)
    config = common_pose.loss_section()

    def total():
        per_example, _ = losses.pose_loss(model(inputs, training=True), targets, K, size, body,
                                          config)
        return tf.reduce_mean(per_example)

    first = float(total())
    for _ in range(15):
        with tf.GradientTape() as tape:
            loss = total()
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
    assert float(total()) < 0.9 * first


def test_mixed_precision_keeps_geometry_in_float32(body):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = pose_net.build_pose_model(make_config(kind="mixer"), body)
        out = model({"image": tf.random.uniform((1, 96, 96, 3)), "K": camera(1, 96)})
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(t.dtype == tf.float32 for t in out.values())
    assert np.isfinite(out["vertices"].numpy()).all()


def test_sinusoidal_positions_closed_form_and_no_weights(body):
    pe = sinusoidal_2d(3, 2, 8)  # 6 positions, 2 frequencies (1, 1/100) for rows and for columns
    row, col = np.repeat(np.arange(3), 2), np.tile(np.arange(2), 3)
    freq = np.array([1.0, 0.01])
    expected = np.concatenate([np.sin(row[:, None] * freq), np.cos(row[:, None] * freq),
                               np.sin(col[:, None] * freq), np.cos(col[:, None] * freq)], axis=1)
    np.testing.assert_allclose(pe, expected, atol=1e-6)
    learned = pose_net.build_pose_model(make_config(), body)
    config = make_config()
    config.model.head.pos_encoding = "sinusoidal"
    fixed = pose_net.build_pose_model(config, body)
    assert learned.count_params() - fixed.count_params() == 3 * 3 * 64  # the 3x3 x width table
    out = fixed({"image": tf.zeros((1, 96, 96, 3)), "K": camera(1, 96)})
    assert out["markers"].shape == (1, body.num_markers, 3)


def test_registered_layers_round_trip_and_the_rest_is_rebuilt_from_config_json():
    """Layers registered for Keras serialisation rebuild from get_config(); ThundrHead (it holds
    the shared block object) and BodyLayer (it holds a body model) are deliberately not
    registered: a pose model is always rebuilt from config.json (docs/network.md), which
    tests/test_train.py's restore tests exercise."""
    from models import dense2d, heads, markerposer, thundr
    from pose_era.era import ERA, AffineNorm

    era = {"degree": 2, "init": "swish", "sharing": "layer"}
    layers = [heads.MLP(8, 4, activation="era", era=era, act_norm=False),
              heads.TransformerBlock(8, num_heads=2, ffn_hidden=16, activation="gelu"),
              heads.MixerBlock(8, token_hidden=4, channel_hidden=8, era=era),
              dense2d.SoftArgmax2D(8), ERA(degree=2, init="relu"), AffineNorm(mode="instance"),
              backbones.CaffePreprocess(),
              markerposer.new_markerposer(tiny_body_model(num_markers=16), hidden=(8,))]
    for layer in layers:
        name = keras.saving.get_registered_name(type(layer))
        assert keras.saving.get_registered_object(name) is type(layer), name
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config(), name
    for cls in (thundr.ThundrHead, markerposer.BodyLayer):
        assert keras.saving.get_registered_object(keras.saving.get_registered_name(cls)) is None
    with pytest.raises(TypeError):  # keyword-only: 13 positional arguments were a trap
        thundr.ThundrHead(layers[2], 4, 8)
