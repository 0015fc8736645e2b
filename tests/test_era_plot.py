"""ERA figures: plot_era_layers on a small functional model (capture of every ERA layer's
inputs, one PNG per layer, the layers left unpatched), and the plot_era CLI end to end on a
tiny classification workdir."""
import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

from pose_era.era import ERA, kernel
from pose_era.era.plot import capture_era_inputs, plot_era_layers

PNG = b"\x89PNG\r\n\x1a\n"


def _model():
    inputs = keras.Input((5,))
    first = ERA(degree=2, init="swish", name="era_first")
    shared = ERA(degree=4, init="random", sharing="channel", name="era_shared")
    h = first(keras.layers.Dense(8, name="d1")(inputs))
    h = shared(keras.layers.Dense(6, name="d2")(h))
    h = shared(keras.layers.Dense(6, name="d3")(h))
    return keras.Model(inputs, keras.layers.Dense(2)(h)), first, shared


def test_capture_sees_every_call_and_restores_the_layers():
    model, first, shared = _model()
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    captured = capture_era_inputs(model, x)
    assert set(captured) == {first, shared}
    want = keras.Model(model.input, model.get_layer("d1").output)(x).numpy()
    np.testing.assert_allclose(captured[first], want.reshape(-1, 1), rtol=1e-6)
    assert captured[shared].shape == (14, 6)      # two calls of 7 rows, one column per channel
    assert "call" not in vars(first) and "call" not in vars(shared)


def test_plot_era_layers_writes_one_png_per_layer(tmp_path):
    model, _, _ = _model()
    x = np.random.default_rng(1).normal(size=(32, 5)).astype(np.float32)
    paths = plot_era_layers(model, x, tmp_path / "plots")
    assert [p.name for p in paths] == ["00_era_first.png", "01_era_shared.png"]
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
    with pytest.raises(ValueError, match="no ERA layer"):
        plot_era_layers(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]),
                        x[:, :3], tmp_path)


def _tool():
    spec = importlib.util.spec_from_file_location(
        "plot_era", kernel.REPO_ROOT / "tools" / "plot_era.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    assert _tool().main(["--ckpt", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not found" in err and len(err.splitlines()) == 1


def test_cli_end_to_end_on_a_tiny_classification_workdir(tmp_path, capsys):
    from training import config as config_lib
    from training import tasks

    config = config_lib.load_config("digits_fcn")
    config_lib.apply_overrides(config, ["model.activation=era"])
    workdir = tmp_path / "workdir"
    config_lib.save_json(config, workdir)
    model = tasks.get(config.task)(config).build_model()
    checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(3, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(workdir / "ckpt"), max_to_keep=1).save(
        checkpoint_number=3)
    assert _tool().main(["--ckpt", str(workdir)]) == 0
    out = capsys.readouterr().out
    pngs = sorted((workdir / "era_plots").glob("*.png"))
    eras = [layer for layer in model._flatten_layers() if isinstance(layer, ERA)]
    assert len(pngs) == len(eras) >= 1 and "at step 3" in out
