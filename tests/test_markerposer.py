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
