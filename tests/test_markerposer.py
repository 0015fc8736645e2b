"""MarkerPoser: starts at the mean body, is translation-equivariant, learns from synthetic bodies,
and its weights round-trip through the .npz the full network loads."""
import numpy as np
import pytest
import tensorflow as tf

from models import markerposer as mp
from models import markerposer_pretrain as pre
from models.mean_body import mean_body
from tiny_body import tiny_body_model


@pytest.fixture(scope="module")
def body():
    return tiny_body_model(num_markers=16)


def test_untrained_markerposer_returns_the_upright_mean_body_on_the_markers(body):
    layer = mp.new_markerposer(body)
    mean = mean_body(body)
    markers = mean["markers"][None] + np.array([[[0.3, -0.2, 5.0]]], np.float32)
    params = layer(tf.constant(markers))
    np.testing.assert_allclose(params["betas"], 0.0)
    np.testing.assert_allclose(params["rotmats"][0, 0], mean["root"], atol=1e-6)
    np.testing.assert_allclose(params["rotmats"][0, 1:], np.tile(np.eye(3), (body.num_joints - 1,
                                                                             1, 1)), atol=1e-6)
    posed = body(params["betas"], params["rotmats"], params["transl"])
    np.testing.assert_allclose(posed["markers"], markers, atol=1e-5)


def test_translation_equivariance(body):
    layer = mp.new_markerposer(body)
    for v in layer.trainable_variables:  # any weights, not just the zero-initialised start
        v.assign(tf.random.normal(v.shape, stddev=0.05, seed=7))
    markers = tf.random.normal((2, body.num_markers, 3), seed=8)
    shift = tf.constant([[0.5, -1.0, 3.0]])
    a, b = layer(markers), layer(markers + shift[:, None])
    np.testing.assert_allclose(b["transl"], a["transl"] + shift, atol=1e-5)
    np.testing.assert_allclose(b["rotmats"], a["rotmats"], atol=1e-5)


def test_marker_submodel_is_exact(body):
    sub = pre.marker_submodel(body)
    assert sub.num_vertices < body.num_vertices
    gen = tf.random.Generator.from_seed(0)
    s = pre.sample_bodies(body, 4, gen)
    full, part = body(s["betas"], s["rotmats"], s["transl"]), sub(s["betas"], s["rotmats"],
                                                                  s["transl"])
    for key in ("joints", "markers"):
        np.testing.assert_allclose(part[key], full[key], atol=1e-6, err_msg=key)


def test_samples_respect_the_angle_cap_and_the_noise(body):
    gen = tf.random.Generator.from_seed(1)
    s = pre.sample_bodies(body, 256, gen, noise=0.02, pose_std=1.0, max_angle=0.7)
    rot = s["rotmats"][:, 1:].numpy()
    angle = np.arccos(np.clip((np.trace(rot, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    assert angle.max() <= 0.7 + 1e-3 and angle.max() > 0.69
    noise = (s["noisy_markers"] - s["markers"]).numpy()
    assert abs(noise.std() - 0.02) < 0.002
    z = s["joints"][:, 0, 2].numpy()
    assert z.min() > 1.0 and z.max() < 9.0  # in front of the camera


def test_pretraining_beats_the_mean_pose_baseline(body):
    """A short CPU pre-training; docs/network.md has the full run on the Anny body model."""
    layer = pre.pretrain_markerposer(body, steps=400, batch=64, noise=0.01, seed=0, lr=3e-3)
    result = pre.evaluate_markerposer(layer, body, num=512)
    print("MarkerPoser (tiny body, 400 steps):", result)  # measured: 100 mm vs 251 mm
    assert result["mpjpe_mm"] < 0.6 * result["baseline_mm"]


def test_weights_round_trip_and_mismatch_errors(body, tmp_path):
    layer = mp.new_markerposer(body)
    for v in layer.trainable_variables:
        v.assign(tf.random.normal(v.shape, seed=2))
    path = tmp_path / "mp.npz"
    mp.save_weights(layer, path)
    other = mp.new_markerposer(body)
    mp.load_weights(other, path)
    x = tf.random.normal((1, body.num_markers, 3), seed=3)
    np.testing.assert_array_equal(other(x)["rot6d"], layer(x)["rot6d"])
    smaller = mp.new_markerposer(body, hidden=(64,))
    with pytest.raises(ValueError, match="does not fit this MarkerPoser"):
        mp.load_weights(smaller, path)
    with pytest.raises(FileNotFoundError, match="pretrain_markerposer"):
        mp.load_weights(other, tmp_path / "missing.npz")


def test_full_network_loads_pretrained_weights_frozen(body, tmp_path):
    from test_thundr import make_config
    from models import pose_net
    layer = mp.new_markerposer(body)
    for v in layer.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.01, seed=4))
    path = tmp_path / "mp.npz"
    mp.save_weights(layer, path)
    config = make_config()
    config.model.markerposer.weights, config.model.markerposer.trainable = str(path), False
    model = pose_net.build_pose_model(config, body)
    inside = model.get_layer("markerposer")
    assert not inside.trainable_variables
    for a, b in zip(inside.weights, layer.weights):
        np.testing.assert_array_equal(a, b)
    assert not any(v.path.startswith("markerposer/") for v in model.trainable_variables)


def test_pretrain_cli_writes_weights_and_figures(tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path
    from pose_era.body import format as body_format
    from tiny_body import tiny_body_arrays
    spec = importlib.util.spec_from_file_location(
        "pretrain_tool", Path(__file__).resolve().parents[1] / "tools/pretrain_markerposer.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    body_path = body_format.save(tmp_path / "tiny.npz", tiny_body_arrays(16))
    out = tmp_path / "mp.npz"
    assert tool.main(["--out", str(out), "--body", str(body_path), "--hidden", "a,b"]) == 2
    assert "error:" in capsys.readouterr().err
    assert tool.main(["--out", str(out), "--body", str(body_path), "--steps", "2",
                      "--hidden", "32", "--eval_num", "8"]) == 0
    figures = json.loads(out.with_suffix(".json").read_text())
    assert set(figures["clean"]) == {"mpjpe_mm", "baseline_mm"}
    mp.load_weights(mp.new_markerposer(tiny_body_model(16), hidden=(32,)), out)


def _random_rotation(seed):
    q = np.random.default_rng(seed).normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]],
                    np.float32)


def test_kabsch_recovers_the_rotation_of_a_rotated_template(body):
    template = mean_body(body)["markers"]
    template = template - template.mean(0)
    rots = np.stack([_random_rotation(s) for s in range(8)])
    points = np.einsum("bij,kj->bki", rots, template)
    r = np.asarray(mp.kabsch_rotation(template, points))
    np.testing.assert_allclose(r, rots, atol=1e-4)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)
    # a reflected template still gives a proper rotation (the det fix)
    r = np.asarray(mp.kabsch_rotation(template, -template[None]))
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)
    np.testing.assert_allclose(r[0] @ r[0].T, np.eye(3), atol=1e-5)


@pytest.mark.parametrize("randomised", [False, True])
def test_canonical_frame_is_rotation_equivariant(body, randomised):
    layer = mp.new_markerposer(body, canonical_frame=True)
    if randomised:  # nonzero output kernel too: any weights, not just the mean-body start
        for v in layer.trainable_variables:
            v.assign(tf.random.normal(v.shape, stddev=0.05, seed=9))
    gen = tf.random.Generator.from_seed(5)
    markers = pre.sample_bodies(body, 4, gen, noise=0.01)["noisy_markers"].numpy()
    centroid = markers.mean(1, keepdims=True)
    q = np.stack([_random_rotation(10 + i) for i in range(4)])
    turned = np.einsum("bij,bkj->bki", q, markers - centroid) + centroid
    a, b = layer(tf.constant(markers)), layer(tf.constant(turned))
    np.testing.assert_allclose(b["rotmats"][:, 0], q @ a["rotmats"][:, 0].numpy(), atol=1e-4)
    np.testing.assert_allclose(b["rotmats"][:, 1:], a["rotmats"][:, 1:], atol=1e-4)
    np.testing.assert_allclose(b["betas"], a["betas"], atol=1e-4)
    # the posed body turns with the markers (the translation is mapped back too)
    pa = body(a["betas"], a["rotmats"], a["transl"])["markers"].numpy()
    pb = body(b["betas"], b["rotmats"], b["transl"])["markers"].numpy()
    np.testing.assert_allclose(pb, np.einsum("bij,bkj->bki", q, pa - centroid) + centroid,
                               atol=1e-4)


def test_canonical_frame_untrained_returns_the_mean_body_on_the_markers(body):
    layer = mp.new_markerposer(body, canonical_frame=True)
    mean = mean_body(body)
    markers = mean["markers"][None] + np.array([[[0.3, -0.2, 5.0]]], np.float32)
    params = layer(tf.constant(markers))
    np.testing.assert_allclose(params["rotmats"][0, 0], mean["root"], atol=1e-5)
    posed = body(params["betas"], params["rotmats"], params["transl"])
    np.testing.assert_allclose(posed["markers"], markers, atol=1e-5)


def test_canonical_frame_degenerate_markers_give_finite_outputs_and_gradients(body):
    layer = mp.new_markerposer(body, canonical_frame=True)
    for v in layer.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.05, seed=11))
    k = body.num_markers
    same = np.tile([[0.1, 0.2, 4.0]], (k, 1))
    line = np.stack([np.linspace(-1, 1, k), np.zeros(k), 4 + np.zeros(k)], -1)
    markers = tf.constant(np.stack([same, line, np.zeros((k, 3))]), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(markers)
        out = layer(markers)
        loss = sum(tf.reduce_sum(out[key]) for key in ("rotmats", "betas", "transl"))
    for key in ("rot6d", "rotmats", "betas", "transl"):
        assert np.all(np.isfinite(out[key])), key
    grads = tape.gradient(loss, [markers] + layer.trainable_variables)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_canonical_frame_config_round_trip_and_default(body):
    layer = mp.new_markerposer(body, canonical_frame=True)
    clone = mp.MarkerPoser.from_config(layer.get_config())
    clone.build((None, body.num_markers, 3))
    for a, b in zip(clone.weights, layer.weights):
        a.assign(b)
    x = tf.random.normal((2, body.num_markers, 3), seed=12)
    np.testing.assert_allclose(clone(x)["rotmats"], layer(x)["rotmats"], atol=1e-6)
    config = layer.get_config()
    for key in ("canonical_frame", "template", "pivot", "pivot_dirs"):
        config.pop(key)
    assert not mp.MarkerPoser.from_config(config).canonical_frame  # older saved configs


def test_a_config_json_without_canonical_frame_builds_the_plain_markerposer(body, tmp_path):
    """A config.json saved before the key existed (a released model's, even of the cpu variant
    whose value is now True) gets the base config's default: the behaviour it was trained with."""
    import json
    from models import pose_net
    from training import config as config_lib
    config = config_lib.load_config("mixer_64:cpu")
    assert config.model.markerposer.canonical_frame
    saved = json.loads(config.to_json_best_effort())
    del saved["model"]["markerposer"]["canonical_frame"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    old = config_lib.load_json(tmp_path)
    assert old.model.markerposer.canonical_frame is False
    old.model.markerposer.update(weights="none", trainable=True)
    assert not pose_net.build_markerposer(old.model, body).canonical_frame
    old.model.markerposer.canonical_frame = True
    assert pose_net.build_markerposer(old.model, body).canonical_frame


def test_weights_remember_the_canonical_frame(body, tmp_path):
    plain, canonical = mp.new_markerposer(body), mp.new_markerposer(body, canonical_frame=True)
    mp.save_weights(canonical, tmp_path / "c.npz")
    mp.load_weights(mp.new_markerposer(body, canonical_frame=True), tmp_path / "c.npz")
    with pytest.raises(ValueError, match="canonical_frame=true"):
        mp.load_weights(plain, tmp_path / "c.npz")
    mp.save_weights(plain, tmp_path / "p.npz")
    with pytest.raises(ValueError, match="canonical_frame=false"):
        mp.load_weights(canonical, tmp_path / "p.npz")


def test_a_trained_markerposer_survives_a_training_checkpoint(tmp_path):
    """Every MarkerPoser weight, hidden layers included, is in a tf.train checkpoint: a
    trainable MarkerPoser restored from one gives the trained outputs, not its initial ones
    (its hidden layers used to live in a list the checkpoint did not follow)."""
    body = tiny_body_model(16)
    layer = mp.new_markerposer(body, hidden=(16, 8), act_norm=True, activation="era")
    rng = np.random.default_rng(0)
    for v in layer.weights:  # "trained": every weight moved away from its initial value
        v.assign(v + rng.normal(0, 0.05, v.shape).astype(np.float32))
    markers = tf.constant(rng.normal(0, 0.3, (2, 16, 3)) + [0, 0, 4], tf.float32)
    prefix = tf.train.Checkpoint(layer=layer).save(str(tmp_path / "ck"))
    saved = {name for name, _ in tf.train.list_variables(prefix)}
    assert sum("VARIABLE_VALUE" in n and n.startswith("layer/") for n in saved) == len(
        layer.weights)
    fresh = mp.new_markerposer(body, hidden=(16, 8), act_norm=True, activation="era")
    tf.train.Checkpoint(layer=fresh).restore(prefix).assert_existing_objects_matched()
    for key in ("rotmats", "betas", "transl"):
        np.testing.assert_allclose(fresh(markers)[key], layer(markers)[key], atol=1e-6)


def test_weights_settings_come_from_the_file(body, tmp_path):
    """The settings a weights file was trained with: the .json's arguments, the .npz's own
    canonical_frame flag first, the defaults where neither says."""
    import json
    layer = mp.new_markerposer(body, hidden=(16,), act_norm=True, canonical_frame=True)
    mp.save_weights(layer, tmp_path / "a.npz")
    assert mp.weights_settings(tmp_path / "a.npz") == {**mp.DEFAULT_SETTINGS,
                                                       "canonical_frame": True}
    (tmp_path / "a.json").write_text(json.dumps({"args": {"hidden": "16", "act_norm": True,
                                                          "canonical_frame": False}}))
    settings = mp.weights_settings(tmp_path / "a.npz")
    assert settings == {"hidden": (16,), "activation": "relu", "act_norm": True,
                        "canonical_frame": True}
    mp.load_weights(mp.new_markerposer(body, **settings), tmp_path / "a.npz")
