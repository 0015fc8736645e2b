"""tools/release_model.py (workdir -> pretrained/NAME), run_demo's backbone export and
tools/plot_training.py (curve PNG)."""
import json

import numpy as np
import pytest
import tensorflow as tf

from models.backbones import build_backbone
from tests.tiny_pose_workdir import IMAGE_SIZE, STEP, make_workdir
from tools import plot_training, release_model, run_demo
from training import checkpoints


def test_release_keeps_the_model_and_drops_nothing_it_needs(tmp_path):
    workdir, config, model = make_workdir(tmp_path)
    (workdir / "run_info.json").write_text(json.dumps({"starts": [{"step": 0}]}))
    out, step = release_model.release(workdir, tmp_path / "pretrained" / "tiny")
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
                              m.backbone.bn_momentum, stride8=m.dense2d.enabled)
    images = inputs["image"]
    for mine, theirs in zip(tf.nest.flatten(backbone(images)),
                            tf.nest.flatten(model.get_layer("backbone")(images))):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(FileExistsError):
        release_model.release(workdir, out)
    assert not list(out.parent.glob(".tiny.*"))  # no half-written folder left beside it


def test_release_with_another_markerposer_keeps_the_head(tmp_path):
    from models import markerposer as mp
    from training import config as config_lib
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
