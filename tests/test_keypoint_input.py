"""The keypoint-fed network (model.keypoint_input, models/keypoint_input.py): its new weights start
at zero so it reproduces the network it is fine-tuned from exactly, they learn from the first
step, its features and splat against closed forms, and the demo's and the evaluator's inputs."""
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import pose_net
from models.keypoint_input import TOKEN_SIGMA, splat
from models.lifter import ray_features
from test_thundr import camera
from tests.tiny_pose_workdir import IMAGE_SIZE, make_workdir, tiny_overrides
from training import checkpoints, tasks
from training import config as config_lib

RELEASE = Path(__file__).resolve().parents[1] / "pretrained" / "mixer_64_synth"


def random_keypoints(batch, seed, size=None):
    """(B, 17, 3) keypoint inputs in the crop, about a fifth absent."""
    rng = np.random.default_rng(seed)
    uv = rng.uniform(0.1, 0.9, (batch, 17, 2))
    flag = (rng.uniform(size=(batch, 17)) > 0.2).astype(np.float32)
    return tf.constant(np.concatenate([uv * flag[..., None], flag[..., None]], -1), tf.float32)


def _kp_model(config):
    config = config_lib.load_config(config) if isinstance(config, str) else config
    with config.unlocked():
        config.model.keypoint_input.enabled = True
    return config, tasks.get(config.task)(config).build_model()


def _inputs(batch, size, seed):
    return {"image": tf.random.uniform((batch, size, size, 3), seed=seed),
            "K": camera(batch, size, focal=1.5 * size)}


def test_a_keypoint_fed_model_loaded_from_a_plain_run_gives_its_outputs_exactly(tmp_path):
    """A tiny mixer_64:cpu run (dense aid, keypoint tokens, lifter): the keypoint-fed model of
    the same config initialised from it returns exactly its outputs for any keypoints, and
    only the new layers are reported new."""
    workdir, config, plain = make_workdir(tmp_path)
    # Give the plain run's zero-initialised layers values, so that "equal" is not "all zero".
    for v in plain.weights:
        if "kernel" in v.path and not np.any(v.numpy()):
            v.assign(tf.random.normal(v.shape, stddev=0.01, seed=3))
    checkpoint = tf.train.Checkpoint(model=plain, step=tf.Variable(8, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(workdir / "ckpt"), max_to_keep=1).save(
        checkpoint_number=8)
    config, fed = _kp_model(config_lib.load_json(workdir))
    assert pose_net.takes_keypoints(fed) and not pose_net.takes_keypoints(plain)
    prefix, new = checkpoints.initialise_from(fed, workdir)
    assert prefix.endswith("ckpt-8")
    assert new and all("/keypoint_input/" in path for path in new)
    assert len(new) == len(fed.weights) - len(plain.weights)
    inputs = _inputs(2, IMAGE_SIZE, 1)
    expected = plain(inputs, training=False)
    for seed in (0, 1):
        got = fed({**inputs, "keypoints": random_keypoints(2, seed)}, training=False)
        for key in ("markers_list", "vertices", "rotmats", "kp2d_dense"):
            np.testing.assert_array_equal(got[key].numpy(), expected[key].numpy(), err_msg=key)


@pytest.mark.skipif(not RELEASE.is_dir(), reason="no released model")
def test_the_release_with_the_keypoint_input_gives_the_releases_outputs_exactly():
    config, release, _ = checkpoints.restore(RELEASE)
    _, fed = _kp_model(config)
    _, new = checkpoints.initialise_from(fed, RELEASE)
    assert new and all("/keypoint_input/" in path for path in new)
    size = int(config.data.image_size)
    inputs = _inputs(2, size, 2)
    expected = release(inputs, training=False)
    got = fed({**inputs, "keypoints": random_keypoints(2, 5)}, training=False)
    for key in ("markers", "vertices", "coco17"):
        np.testing.assert_array_equal(got[key].numpy(), expected[key].numpy(), err_msg=key)


def test_initialising_a_plain_model_from_a_keypoint_fed_run_is_refused(tmp_path):
    """The reverse would drop the run's keypoint-input weights silently: a one-line error."""
    config = config_lib.load_config("mixer_64:cpu,kpin")
    config_lib.apply_overrides(config, tiny_overrides(tmp_path))
    workdir = tmp_path / "fed"
    config_lib.save_json(config, workdir)
    model = tasks.get("pose")(config).build_model()
    checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(1, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(workdir / "ckpt"), max_to_keep=1).save()
    plain_config = config_lib.load_json(workdir)
    plain_config.model.keypoint_input.enabled = False
    plain = tasks.get("pose")(plain_config).build_model()
    with pytest.raises(checkpoints.CheckpointError, match="fit no variable of this model"):
        checkpoints.initialise_from(plain, workdir)


def test_after_one_training_step_the_keypoints_change_the_outputs(tmp_path):
    """At initialisation the keypoints change nothing; one SGD step later each of the four
    paths (image tokens, [markers] token, keypoint tokens, M_0) has moved and the outputs
    depend on the keypoints."""
    config = config_lib.load_config("mixer_64:cpu,kpin")
    # Without the anchor, which moves the body onto the keypoints from the start (its own test,
    # tests/test_keypoint_anchor.py): here only the four learned paths are looked at.
    config_lib.apply_overrides(config, tiny_overrides(tmp_path)
                               + ["model.keypoint_input.anchor=false"])
    model = tasks.get("pose")(config).build_model()
    # A trained head, as in a fine-tune: its correction MLP's last layer is zero-initialised,
    # and until it moves the markers read nothing of the tokens (nor of anything added to them).
    corr = model.get_layer("head").corr.fc2
    corr.kernel.assign(tf.random.normal(corr.kernel.shape, stddev=0.01, seed=7))
    inputs = _inputs(2, IMAGE_SIZE, 4)
    a, b = random_keypoints(2, 10), random_keypoints(2, 11)
    before_a = model({**inputs, "keypoints": a}, training=False)["markers"].numpy()
    before_b = model({**inputs, "keypoints": b}, training=False)["markers"].numpy()
    np.testing.assert_array_equal(before_a, before_b)
    head = model.get_layer("head")
    new = {"tokens": head.keypoint_input.to_tokens.kernel,
           "marker token": head.keypoint_input.to_marker_token.fc2.kernel,
           "keypoint tokens": head.keypoint_input.to_keypoint_tokens.kernel,
           "M_0": head.keypoint_input.lifter.out.fc2.kernel}
    assert all(not np.any(v.numpy()) for v in new.values())
    target = tf.random.normal(before_a.shape, stddev=0.1, seed=9) + before_a
    with tf.GradientTape() as tape:
        out = model({**inputs, "keypoints": a}, training=True)
        loss = tf.reduce_mean(tf.square(out["markers_list"] - target[:, None]))
    pairs = [(g, v) for g, v in zip(tape.gradient(loss, model.trainable_variables),
                                    model.trainable_variables) if g is not None]
    keras.optimizers.SGD(0.5).apply_gradients(pairs)
    for name, v in new.items():
        assert np.any(v.numpy()), f"the {name} path got no gradient"
    after_a = model({**inputs, "keypoints": a}, training=False)["markers"].numpy()
    after_b = model({**inputs, "keypoints": b}, training=False)["markers"].numpy()
    assert np.abs(after_a - after_b).max() > 1e-4


def test_splat_is_a_one_cell_gaussian_at_the_keypoint_times_its_flag():
    """Grid 3 rows x 4 columns; keypoint 0 at the centre of cell (row 1, column 2), keypoint 1
    absent: weight 1 on that cell, exp(-1 / (2 sigma^2)) on its four neighbours, exp(-1) on
    the diagonal ones; all 0 for the absent keypoint."""
    kp = np.array([[[2.5 / 4, 1.5 / 3, 1.0], [0.3, 0.3, 0.0]]], np.float32)
    w = splat(tf.constant(kp), (3, 4)).numpy()[0].reshape(3, 4, 2)
    rows, cols = np.mgrid[0:3, 0:4]
    expected = np.exp(-((rows - 1) ** 2 + (cols - 2) ** 2) / (2 * TOKEN_SIGMA ** 2))
    np.testing.assert_allclose(w[..., 0], expected, rtol=1e-5)
    np.testing.assert_array_equal(w[..., 1], 0.0)


def test_pose_features_ignore_absent_keypoints_and_match_the_normalised_rays():
    """Against NumPy: rays K^-1 (u, v, 1) of the flagged keypoints, centred on their mean and
    divided by their RMS spread; moving an absent keypoint changes nothing; with none flagged
    every feature is 0."""
    size, n = 160, 17
    rng = np.random.default_rng(0)
    uv = rng.uniform(0.1, 0.9, (1, n, 2))
    flag = (rng.uniform(size=(1, n)) > 0.3).astype(np.float64)
    K = np.array([[[300.0, 0, 70], [0, 310.0, 90], [0, 0, 1]]])
    geometry = np.concatenate([uv - 0.5, flag[..., None]], -1).astype(np.float32)
    got = ray_features(tf.constant(geometry), tf.constant(K, tf.float32), size,
                       confidence=True).numpy()[0]
    rays = (uv[0] * size - K[0, :2, 2]) / K[0, [0, 1], [0, 1]]
    on = flag[0] > 0
    mean = rays[on].mean(0)
    spread = np.sqrt(np.mean(np.sum((rays[on] - mean) ** 2, -1)))
    shape = (rays - mean) / spread * flag[0][:, None]
    expected = np.concatenate([shape.ravel(), flag[0], mean, [np.log(spread)]])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    moved = geometry.copy()
    moved[0, ~on, :2] += 0.2
    np.testing.assert_allclose(ray_features(tf.constant(moved), tf.constant(K, tf.float32),
                                            size, confidence=True).numpy()[0], got, atol=1e-6)
    none = geometry.copy()
    none[..., 2] = 0.0
    none[..., :2] = 0.0
    np.testing.assert_array_equal(ray_features(tf.constant(none), tf.constant(K, tf.float32),
                                               size, confidence=True).numpy(), 0.0)


def test_the_demo_gives_blazeposes_seen_keypoints_in_crop_coordinates():
    """eval.demo.network_keypoints against the crop's affine map done by hand: a crop box
    [x0, y0, x0 + side, y0 + side] resized to S maps p to (p - (x0, y0)) S / side; a keypoint
    is given when visible (>= 0.5), present, inside the photo and the crop."""
    from eval import demo
    size, box = 160, np.array([100.0, 50.0, 500.0, 450.0], np.float32)     # side 400
    kp = np.zeros((17, 3), np.float32)
    kp[:, :2] = np.random.default_rng(1).uniform(120, 390, (17, 2))
    kp[:, 2] = 0.9
    kp[3, 2] = 0.4                  # not visible enough
    kp[4, :2] = [90.0, 200.0]       # outside the crop (x < 100), inside the photo
    kp[5, :2] = [300.0, 420.0]      # inside the crop, below the photo (height 400)
    absent = np.zeros(17, bool)
    absent[6] = True
    got = demo.network_keypoints(kp, absent, box, size, (400, 640, 3))
    given = np.ones(17, bool)
    given[[3, 4, 5, 6]] = False
    np.testing.assert_array_equal(got[:, 2], given.astype(np.float32))
    expected = (kp[:, :2] - box[:2]) * size / 400.0 / size
    np.testing.assert_allclose(got[given, :2], expected[given], rtol=1e-5)
    np.testing.assert_array_equal(got[~given, :2], 0.0)
    np.testing.assert_array_equal(demo.network_keypoints(None, None, box, size, (400, 640, 3)),
                                  0.0)


class _Recorder:
    """A stand-in pose model: records its inputs, returns what an untrained net's dict holds."""

    def __init__(self, model, keypoints):
        self.model, self.seen = model, []
        self.input = {"image": None, "K": None, **({"keypoints": None} if keypoints else {})}

    def __call__(self, inputs, training=False):
        self.seen.append(inputs)
        return {"coco17": np.zeros((1, 17, 3), np.float32)}


def test_the_pipeline_feeds_keypoints_only_to_a_model_that_takes_them():
    from eval import demo
    rgb = np.zeros((300, 200, 3), np.uint8)
    kp = np.column_stack([np.linspace(60, 140, 17), np.linspace(40, 260, 17), np.ones(17)])
    for takes in (False, True):
        model = _Recorder(None, takes)
        demo.Pipeline(model, 64).predict(rgb, (50, 30, 100, 240), demo.full_intrinsics(200, 300),
                                         kp.astype(np.float32), np.zeros(17, bool))
        assert set(model.seen[0]) == ({"image", "K", "keypoints"} if takes else {"image", "K"})
        if takes:
            given = np.asarray(model.seen[0]["keypoints"])
            assert given.shape == (1, 17, 3) and given[0, :, 2].sum() == 17


def test_the_evaluator_gives_a_keypoint_fed_model_noisy_truth_with_a_fixed_seed(tmp_path, capsys):
    """eval.keypoints=noisy_truth: a loud warning, the same keypoints for the same image in any
    batch, the truth projected from the body when the split stores no 2D."""
    from eval.keypoint_input import NoisyTruth, true_keypoints
    from eval.pose_eval import PoseEvaluator
    from data_pipelines.keypoint_noise import KeypointNoise
    from tiny_body import tiny_body_model
    config = config_lib.load_config("mixer_64:cpu,kpin")
    config_lib.apply_overrides(config, tiny_overrides(tmp_path) + ["eval.keypoints=noisy_truth"])
    body = tiny_body_model(num_markers=16)
    evaluator = PoseEvaluator.from_config(config, body)
    source = evaluator.keypoint_source
    assert isinstance(source, NoisyTruth) and "NOT a detector" in source.description
    assert "TRUE 2D keypoints" in capsys.readouterr().err
    # A batch of two mean bodies in front of the camera, no kp2d stored.
    b, size = 2, IMAGE_SIZE
    K = camera(b, size, focal=2.0 * size).numpy()
    batch = {"image": np.zeros((b, size, size, 3), np.float32), "K": K,
             "kp2d": np.zeros((b, 17, 3), np.float32), "has_params": np.ones(b, np.float32),
             "betas": np.zeros((b, body.num_betas), np.float32),
             "pose": np.zeros((b, body.num_joints, 3), np.float32),
             "transl": np.array([[0, 0, 4.0], [0.1, 0, 5.0]], np.float32),
             "imgname": np.array([b"a.jpg", b"b.jpg"])}
    truth = true_keypoints(batch, body)
    posed = body.from_labels(batch["betas"], batch["pose"], batch["transl"])["coco17"].numpy()
    by_hand = posed[..., :2] / posed[..., 2:] * 2.0 * size + size / 2
    np.testing.assert_allclose(truth[..., :2], by_hand, rtol=1e-4, atol=1e-3)
    first = source(batch)
    swapped = {k: v[::-1] for k, v in batch.items()}
    np.testing.assert_array_equal(source(swapped)[::-1], first)
    exact = NoisyTruth(KeypointNoise(sigma=(0.0,) * 17), size, body)(batch)
    inside = truth[..., 2] > 0
    np.testing.assert_allclose(exact[..., :2][inside], truth[..., :2][inside] / size, atol=1e-6)
    assert np.abs(first[..., :2] - exact[..., :2])[inside & (first[..., 2] > 0)].max() > 0


def test_the_driver_fine_tunes_a_plain_run_with_the_keypoint_input(tmp_path, capsys):
    """`--config mixer_64:cpu,kpin --set train.init_from=<a plain run>` through the driver: it
    starts from the plain run's weights (the new ones reported), trains on noisy keypoints,
    evaluates with keypoints (noisy_truth here: no BlazePose in this test), and the new layers
    move."""
    from training import driver
    source, _, plain = make_workdir(tmp_path)
    config = config_lib.load_config("mixer_64:cpu,kpin")
    config_lib.apply_overrides(config, [
        *tiny_overrides(tmp_path), f"train.init_from={source}", "train.steps=2",
        "train.batch_size=4", "train.eval_every=2", "train.log_every=1", "train.image_every=2",
        "data.synth_train=8", "data.synth_test=4", "data.val_size=4", "data.shuffle_buffer=8",
        "eval.keypoints=noisy_truth"])
    trainer = driver.Trainer(config, tmp_path / "fed")
    assert trainer.restore_latest() == 0
    for name in ("backbone", "head", "markerposer", "dense2d_logits"):
        ours = [v for v in trainer.model.get_layer(name).weights
                if "/keypoint_input/" not in v.path]
        theirs = plain.get_layer(name).weights
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    results = trainer.fit()
    out = capsys.readouterr().out
    assert "initialised the model from" in out and "variables are new" in out
    assert all(np.isfinite(v) for v in results.values()) and "pa_mpjpe" in results
    head = trainer.model.get_layer("head")
    assert np.any(head.keypoint_input.lifter.out.fc2.kernel.numpy())
