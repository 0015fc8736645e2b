"""tools/paper_sweep.py end to end on a tiny release (tests/tiny_pose_workdir.py) and a tiny
rendered synthetic set: rows written, a resumed sweep skips finished rows, a diverged run is
a row, the cached features are the backbone's, the data order is a per-epoch permutation."""
import json

import numpy as np
import pytest

from data_pipelines.synthetic import writer
from tests.tiny_pose_workdir import make_workdir
from tools import paper_sweep as cli
from training import checkpoints
from training import paper_sweep as sweep


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    workdir, config, _ = make_workdir(root)
    writer.write_dataset(root / "synth", 12, 6, 0, body_path=config.body.path, workers=0,
                         image_size=int(config.data.image_size), progress=False)
    return root, workdir


def _argv(root, workdir, **extra):
    args = {"--ckpt": workdir, "--heads": "mixer", "--widths": "16", "--activations": "relu",
            "--seeds": "0", "--steps": "4", "--batch": "4", "--warmup": "0",
            "--eval-every": "2", "--out": root / "sweep.json", "--cache": root / "cache",
            **extra}
    return [str(x) for kv in args.items() for x in kv] + ["--no-progress"]


def test_sweep_writes_rows_and_resumes(tiny, monkeypatch):
    root, workdir = tiny
    out = root / "sweep.json"
    assert cli.main(_argv(root, workdir, **{"--activations": "relu,era2"})) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["activation"], r["seed"]) for r in rows] == [("relu", 0), ("era2", 0)]
    for r in rows:
        assert r["head"] == "mixer" and r["width"] == 16 and r["steps"] == 4
        assert not r["diverged"] and r["commit"] and len(r["backbone_sha256"]) == 64
        assert all(np.isfinite(r[m]) and r[m] > 0 for m in ("mpjpe", "pa_mpjpe", "mpvpe"))
        assert [p["step"] for p in r["curve"] if "mpjpe" in p] == [2, 4]
        assert r["curve"][-1]["pa_mpjpe"] == r["pa_mpjpe"]
        assert r["train_images"] == 12 and r["test_images"] == 6
    assert rows[0]["curve"][-1]["loss"] != rows[1]["curve"][-1]["loss"]   # two heads trained
    runs = sorted((root / "cache" / "runs").iterdir())
    assert [sorted(p.name for p in r.iterdir()) for r in runs] == [["head.weights.h5"]] * 2
    plots = root / "era_plots"
    assert cli.main(_argv(root, workdir, **{"--activations": "relu,era2"})
                    + ["--plot-era", str(plots)]) == 0
    (era_run,) = plots.iterdir()
    assert "era2" in era_run.name and len(list(era_run.glob("*.png"))) >= 3   # FFN, correction

    calls = []
    real = sweep.train_run
    monkeypatch.setattr(sweep, "train_run", lambda *a, **k: calls.append(a[4:8]) or real(*a, **k))
    assert cli.main(_argv(root, workdir, **{"--activations": "relu,era2", "--seeds": "0,1"})) == 0
    assert calls == [("mixer", 16, "relu", 1), ("mixer", 16, "era2", 1)]
    again = json.loads(out.read_text())["rows"]
    assert again[:2] == rows and len(again) == 4
    calls.clear()      # another protocol is another run, never pooled with the old rows
    assert cli.main(_argv(root, workdir, **{"--steps": "3"})) == 0
    assert calls == [("mixer", 16, "relu", 0)]


def test_diverged_run_is_a_row(tiny):
    root, workdir = tiny
    out = root / "diverged.json"
    assert cli.main(_argv(root, workdir, **{"--lr": "1e4", "--steps": "6", "--out": out,
                                            "--activations": "swish"})) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["diverged"] is True and row["mpjpe"] is None and row["steps"] <= 6


def test_interrupted_run_resumes_where_it_stopped(tiny, monkeypatch):
    """A run killed after its checkpoint at step 2 continues from it with the same batches:
    its final metrics equal those of a run that was never stopped."""
    from pose_era.body import body_model_of
    root, workdir = tiny
    config = sweep.release_config(workdir)
    cache = sweep.FeatureCache.build(workdir, root / "cache", progress=False)
    body = body_model_of(config)
    evaluator = sweep.Evaluator(cache, config, body)
    protocol = sweep.Protocol(steps=4, batch=4, warmup=0, eval_every=2, ckpt_every=2)
    args = (cache, config, body, evaluator, "transformer", 16, "gelu", 3, protocol)
    whole = sweep.train_run(*args, root / "whole", progress=False)

    real = sweep.batch_indices

    def killed_at_step_3(seed, step, batch, n):
        if step == 3:
            raise KeyboardInterrupt
        return real(seed, step, batch, n)
    monkeypatch.setattr(sweep, "batch_indices", killed_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        sweep.train_run(*args, root / "killed", progress=False)
    monkeypatch.setattr(sweep, "batch_indices", real)
    resumed = sweep.train_run(*args, root / "killed", progress=False)
    assert [p["step"] for p in resumed["curve"]] == [p["step"] for p in whole["curve"]]
    assert resumed["pa_mpjpe"] == pytest.approx(whole["pa_mpjpe"], abs=0.01)
    assert resumed["mpjpe"] == pytest.approx(whole["mpjpe"], abs=0.01)


def test_cached_features_are_the_backbones(tiny):
    root, workdir = tiny
    cache = sweep.FeatureCache.build(workdir, root / "cache", progress=False)
    _, model, _ = checkpoints.restore(workdir)
    backbone = model.get_layer("backbone")
    assert cache.sha256 == sweep.backbone_sha256(backbone)
    import tensorflow as tf
    from data_pipelines.synthetic import records
    first = next(iter(tf.data.TFRecordDataset(records.train_files(root / "synth"))
                      .map(records.parse_example).batch(3)))
    want = sweep._features(backbone, first["image"]).astype(np.float32)
    np.testing.assert_allclose(cache.train_features[:3].astype(np.float32), want,
                               rtol=1e-2, atol=1e-2)
    np.testing.assert_array_equal(cache.train["markers"][:3], first["markers"].numpy())
    assert cache.test_features.shape[0] == cache.meta["test"] == 6


def test_batch_indices_cover_each_epoch_once():
    n, batch = 10, 4
    steps = [sweep.batch_indices(5, s, batch, n) for s in range(5)]   # 20 = two epochs
    flat = np.concatenate(steps)
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert not np.array_equal(flat[:10], flat[10:])
    np.testing.assert_array_equal(sweep.batch_indices(5, 3, batch, n), steps[3])
    assert not np.array_equal(sweep.batch_indices(6, 0, batch, n), steps[0])


def test_the_sweeps_own_results_file_does_not_make_its_rows_dirty(tmp_path):
    """code_version(ignore=[out]): a change to the results file alone is clean; any other
    change to a tracked file is dirty, as without `ignore`."""
    import subprocess
    from pose_era import io

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    out = tmp_path / "results.json"
    out.write_text('{"rows": [1]}\n')
    assert io.code_version(tmp_path, ignore=[out])["dirty"] is False
    assert io.code_version(tmp_path)["dirty"] is True
    (tmp_path / "code.py").write_text("x = 2\n")
    assert io.code_version(tmp_path, ignore=[out])["dirty"] is True


def test_cpu_variant_is_a_second_row_set_on_the_aids_keypoint_tokens(tiny):
    """--variant cpu: the CPU recipe's head (keypoint tokens and lifter) on the release's cached
    keypoint tokens, rows of their own protocol; the tokens' keypoint positions are the ones the
    release's own soft-argmax (kp2d_dense) gives for the same images."""
    import keras
    import tensorflow as tf
    from data_pipelines.synthetic import records
    root, workdir = tiny
    cpu, paper = root / "cpu.json", root / "paper.json"
    assert cli.main(_argv(root, workdir, **{"--variant": "cpu", "--out": cpu,
                                            "--activations": "relu,era2"})) == 0
    assert cli.main(_argv(root, workdir, **{"--out": paper})) == 0
    rows = json.loads(cpu.read_text())["rows"]
    (paper_row,) = json.loads(paper.read_text())["rows"]
    assert [r["protocol"]["variant"] for r in rows] == ["cpu", "cpu"]
    assert paper_row["protocol"]["variant"] == "paper"
    for r in rows:
        assert not r["diverged"] and all(np.isfinite(r[m]) for m in ("mpjpe", "pa_mpjpe"))
    assert rows[0]["head_params"] > paper_row["head_params"]   # token embedding and lifter
    assert rows[0]["mpjpe"] != paper_row["mpjpe"]
    plots = root / "cpu_era_plots"
    assert cli.main(_argv(root, workdir, **{"--variant": "cpu", "--activations": "era2"})
                    + ["--out", str(cpu), "--plot-era", str(plots)]) == 0
    (era_run,) = plots.iterdir()
    assert era_run.name.endswith("_cpu") and len(list(era_run.glob("*.png"))) >= 3

    cache = sweep.FeatureCache.build(workdir, root / "cache", progress=False)
    assert cache.tokens["train"].shape[:2] == (12, 17) and cache.tokens["test"].shape[0] == 6
    config, model, _ = checkpoints.restore(workdir)
    first = next(iter(tf.data.TFRecordDataset(records.train_files(root / "synth"))
                      .map(records.parse_example).batch(3)))
    kp2d = model({"image": first["image"], "K": first["K"]}, training=False)["kp2d_dense"]
    size = int(config.data.image_size)
    np.testing.assert_allclose(cache.tokens["train"][:3, :, -4:-2].astype(np.float32),
                               kp2d.numpy() / size - 0.5, atol=2e-3)
    with pytest.raises(ValueError, match="has no aid"):
        sweep.keypoint_token_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
                                   "a release")
