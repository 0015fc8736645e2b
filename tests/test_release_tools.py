"""tools/release_model.py (workdir -> pretrained/NAME), run_demo's backbone export and
tools/plot_training.py (curve PNG)."""
import json

import numpy as np
import pytest
import tensorflow as tf

from models.backbones import build_backbone
from tests.tiny_pose_workdir import IMAGE_SIZE, STEP, make_workdir, tiny_overrides
from tools import plot_training, release_model, run_demo
from training import checkpoints
from training import config as config_lib


def test_release_keeps_the_model_and_drops_nothing_it_needs(tmp_path):
    workdir, config, model = make_workdir(tmp_path)
    (workdir / "run_info.json").write_text(json.dumps({"starts": [{"step": 0}]}))
    out, step = release_model.release(workdir, tmp_path / "pretrained" / "tiny", float32=True)
    assert step == STEP and (out / "run_info.json").is_file()
    _, released, released_step = checkpoints.restore(out)
    assert released_step == STEP
    inputs = {"image": tf.random.uniform([2, IMAGE_SIZE, IMAGE_SIZE, 3], seed=1),
              "K": tf.constant([[[80.0, 0, 32], [0, 80.0, 32], [0, 0, 1]]] * 2)}
    a, b = model(inputs, training=False), released(inputs, training=False)
    np.testing.assert_array_equal(a["vertices"], b["vertices"])
    # make demo's backbone file starts another run's backbone from the released one
    m = config.model
    run_demo.export_backbone(out, tmp_path / "backbone.weights.h5")
    backbone = build_backbone(m.backbone.name, IMAGE_SIZE, tmp_path / "backbone.weights.h5",
                              m.backbone.bn_momentum, taps=(8,) * m.dense2d.enabled)
    images = inputs["image"]
    for mine, theirs in zip(tf.nest.flatten(backbone(images)),
                            tf.nest.flatten(model.get_layer("backbone")(images))):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(FileExistsError):
        release_model.release(workdir, out)
    assert not list(out.parent.glob(".tiny.*"))  # no half-written folder left beside it


def test_float16_release_is_half_the_size_and_within_1mm(tmp_path):
    workdir, config, model = make_workdir(tmp_path)
    for v in model.weights:  # trained-looking weights: an untrained head predicts the mean body
        v.assign(v + tf.random.normal(v.shape, stddev=0.02, seed=5))
    checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(STEP, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(workdir / "ckpt"), max_to_keep=1).save(
        checkpoint_number=STEP)
    full, _ = release_model.release(workdir, tmp_path / "pretrained" / "f32", float32=True)
    half, _ = release_model.release(workdir, tmp_path / "pretrained" / "f16")
    size = lambda out: sum(f.stat().st_size for f in (out / "ckpt").iterdir())
    prefix = checkpoints.find(half)[1]
    assert checkpoints.stores_float16(prefix) and not checkpoints.stores_float16(
        checkpoints.find(full)[1])
    assert size(half) < 0.6 * size(full)
    dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    assert all(dtype == tf.float32 for key, dtype in dtypes.items()  # small tensors are kept
               if "moving_variance" in key or "/bias/" in key)
    _, restored, _ = checkpoints.restore(half)
    assert all(v.dtype == "float32" for v in restored.weights)
    stored = {v.path: dtypes[key] for key, v in checkpoints.variable_keys(restored, prefix).items()}
    assert all(dtype == tf.float32 for path, dtype in stored.items()    # the head is kept
               if path.startswith(release_model.FLOAT32_LAYERS))
    assert tf.float16 in {dtype for path, dtype in stored.items() if "kernel" in path}
    inputs = release_model.probe_inputs(IMAGE_SIZE)
    a, b = model(inputs, training=False)["vertices"], restored(inputs, training=False)["vertices"]
    assert 0 < float(tf.reduce_max(tf.abs(a - b))) < 1e-3   # rounded, within 1 mm
    with pytest.raises(ValueError, match="release with --float32"):
        release_model.check_float16(config, model, half, tolerance_mm=1e-6)


def test_release_with_another_markerposer_keeps_the_head(tmp_path):
    from models import markerposer as mp
    from tests.tiny_body import tiny_body_model
    workdir, config, model = make_workdir(tmp_path)
    layer = mp.new_markerposer(tiny_body_model(), hidden=(8,),
                               canonical_frame=not config.model.markerposer.canonical_frame)
    for v in layer.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.05, seed=3))
    weights = tmp_path / "other_mp.npz"
    mp.save_weights(layer, weights)
    weights.with_suffix(".json").write_text(json.dumps(
        {"args": {"hidden": "8", "act_norm": False, "activation": "relu"}}))
    out, _ = release_model.release(workdir, tmp_path / "pretrained" / "swapped",
                                   markerposer=weights)
    saved = config_lib.load_json(out).model.markerposer
    assert (saved.weights, list(saved.hidden), saved.act_norm, saved.canonical_frame) == (
        str(weights), [8], False, layer.canonical_frame)
    _, released, _ = checkpoints.restore(out)
    inputs = {"image": tf.random.uniform([2, IMAGE_SIZE, IMAGE_SIZE, 3], seed=1),
              "K": tf.constant([[[80.0, 0, 32], [0, 80.0, 32], [0, 0, 1]]] * 2)}
    a, b = model(inputs, training=False), released(inputs, training=False)
    np.testing.assert_array_equal(a["markers"], b["markers"])
    np.testing.assert_allclose(b["transl"], layer(b["markers"])["transl"], atol=1e-6)


def test_plot_needs_eval_scalars(tmp_path, capsys):
    workdir = tmp_path / "run"
    writer = tf.summary.create_file_writer(str(workdir / "tb"))
    with writer.as_default():
        for step in (100, 200):
            tf.summary.scalar("train/loss/markers3d", 0.3 / step, step=step)
    writer.flush()
    assert plot_training.main([str(workdir), "--out", str(tmp_path / "a.png")]) == 2
    assert "eval/pa_mpjpe" in capsys.readouterr().err
    with writer.as_default():
        for step in (100, 200):
            tf.summary.scalar("eval/mpjpe", 300.0 - step / 10, step=step)
            tf.summary.scalar("eval/pa_mpjpe", 150.0 - step / 10, step=step)
    writer.flush()
    assert plot_training.scalars(workdir)["eval/pa_mpjpe"] == [(100, 140.0), (200, 130.0)]
    assert plot_training.main([str(workdir), "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "b.png").stat().st_size > 10_000


def test_plot_joins_a_continued_run_after_the_one_it_continued(tmp_path):
    def run(name, points):
        writer = tf.summary.create_file_writer(str(tmp_path / name / "tb"))
        with writer.as_default():
            for step, value in points:
                tf.summary.scalar("eval/mpjpe", value + 50, step=step)
                tf.summary.scalar("eval/pa_mpjpe", value, step=step)
        writer.flush()
        return tmp_path / name
    first, second = run("first", [(1000, 150.0), (2000, 140.0)]), run("second", [(500, 135.0)])
    joined, shift = plot_training._joined(plot_training.scalars(first),
                                          plot_training.scalars(second))
    assert shift == 2000 and joined["eval/pa_mpjpe"] == [(1000, 150.0), (2000, 140.0),
                                                         (2500, 135.0)]
    assert plot_training.main([str(second), "--before", str(first),
                               "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_plot_draws_compared_runs_and_names_one_without_a_curve(tmp_path, capsys):
    def run(name, pa):
        writer = tf.summary.create_file_writer(str(tmp_path / name / "tb"))
        with writer.as_default():
            for step in (1000, 2000):
                tf.summary.scalar("eval/mpjpe", pa + 50, step=step)
                if pa:
                    tf.summary.scalar("eval/pa_mpjpe", pa - step / 100, step=step)
        writer.flush()
        return tmp_path / name
    new, old, empty = run("new", 120.0), run("old", 140.0), run("empty", 0.0)
    _, labels = plot_training.plot(new, tmp_path / "d.png", compare=[old])
    assert f"{old} PA-MPJPE" in labels and f"{old} MPJPE" in labels and "model PA-MPJPE" in labels
    assert plot_training.main([str(new), "--compare", str(empty),
                               "--out", str(tmp_path / "e.png")]) == 2
    assert f"{empty}/tb has no eval/pa_mpjpe" in capsys.readouterr().err


def test_make_demo_sets_aside_a_run_it_could_not_resume(tmp_path):
    workdir, config, _ = make_workdir(tmp_path)
    assert run_demo.set_aside_if_changed(config, workdir) is None and workdir.is_dir()
    changed = config_lib.apply_overrides(config_lib.load_config("mixer_64:cpu"),
                                         tiny_overrides(tmp_path) + ["model.head.width=8"])
    aside = run_demo.set_aside_if_changed(changed, workdir)
    assert not workdir.exists() and (aside / "ckpt").is_dir() and aside.parent == workdir.parent
