"""The training driver: config errors, resume after kill -9, the NaN guard, tf.distribute."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training import config as config_lib
from training import checkpoints, driver as train

ROOT = Path(__file__).resolve().parents[1]
TOY = "tests/toy_config.py"


def run_cli(*args, timeout=240):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pose_era.train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def error_lines(stderr):
    """stderr lines that are ours (TensorFlow's C++ start-up logging aside)."""
    return [l for l in stderr.splitlines() if l.startswith("error:")]


@pytest.mark.parametrize("args, needle", [
    (["--config", "no_such_config"], "unknown config 'no_such_config'"),
    (["--config", TOY, "--set", "train.stepz=3"], "unknown config key 'train.stepz'"),
    (["--config", TOY, "--set", "train.steps=many"], "expected a value of type int"),
    (["--config", TOY, "--set", "optimizer.name=rmsprop"], "unknown optimizer.name"),
])
def test_bad_config_is_one_line_and_exit_2(args, needle, tmp_path):
    result = run_cli(*args, "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_overrides_coerce_types():
    config = config_lib.load_config(TOY)
    config_lib.apply_overrides(config, ["train.steps=7", "optimizer.lr=1", "train.devices=['/cpu:0']"])
    assert config.train.steps == 7 and isinstance(config.optimizer.lr, float)
    assert list(config.train.devices) == ["/cpu:0"]


def _toy(workdir, *overrides):
    config = config_lib.apply_overrides(config_lib.load_config(TOY), list(overrides))
    return train.Trainer(config, workdir)


def test_resume_after_kill_9(tmp_path):
    workdir = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pose_era.train", "--config", TOY, "--workdir", str(workdir),
         "--set", "train.steps=1000000", "train.ckpt_every=25"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and tf.train.latest_checkpoint(str(workdir / "ckpt")) is None:
        time.sleep(0.5)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = tf.train.latest_checkpoint(str(workdir / "ckpt"))
    assert latest is not None, "no checkpoint was written before the kill"
    saved_step = checkpoints.step_of(latest)
    assert saved_step > 0 and saved_step % 25 == 0

    trainer = _toy(workdir, f"train.steps={saved_step + 10}")
    assert trainer.restore_latest() == saved_step
    trainer.fit()
    assert int(trainer.step.numpy()) == saved_step + 10
    assert checkpoints.step_of(tf.train.latest_checkpoint(str(workdir / "ckpt"))) == saved_step + 10


def test_nan_guard_keeps_last_good_checkpoint(tmp_path):
    workdir = tmp_path / "run"
    _toy(workdir, "train.steps=20").fit()
    result = run_cli("--config", TOY, "--workdir", str(workdir),
                     "--set", "train.steps=200", "optimizer.lr=1e30")
    assert result.returncode == 2
    assert any("loss became" in line for line in error_lines(result.stderr)), result.stderr
    latest = tf.train.latest_checkpoint(str(workdir / "ckpt"))
    assert checkpoints.step_of(latest) == 20
    _, model, step = checkpoints.restore(workdir)
    assert step == 20
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)


def test_one_and_two_logical_devices_give_the_same_training(tmp_path):
    one = _toy(tmp_path / "one", "train.steps=15")
    two = _toy(tmp_path / "two", "train.steps=15", "train.devices=['/cpu:0', '/cpu:1']")
    assert two.strategy.num_replicas_in_sync == 2
    one.fit()
    two.fit()
    for a, b in zip(one.model.weights, two.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


def test_workdir_contents_and_restore(tmp_path):
    workdir = tmp_path / "run"
    results = _toy(workdir, "train.steps=40").fit()
    assert results["mse"] < 0.1  # y = x @ w has a zero-error solution; 40 SGD steps get close
    assert (workdir / "config.json").is_file()
    assert list((workdir / "tb").glob("events.out.tfevents.*"))
    assert (workdir / "eval" / "train_eval.json").is_file()
    config, model, step = checkpoints.restore(workdir / "ckpt" / "ckpt-40")
    assert step == 40 and config.train.steps == 40
    # provenance: each (re)start with its step and the code's git commit
    _toy(workdir, "train.steps=45").fit()
    starts = json.loads((workdir / "run_info.json").read_text())["starts"]
    assert [s["step"] for s in starts] == [0, 40]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parents[1],
                          capture_output=True, text=True).stdout.strip()
    assert starts[-1]["commit"] == (head or None) and starts[-1]["tensorflow"] == tf.__version__


def test_restore_of_a_non_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="neither a training workdir"):
        checkpoints.restore(tmp_path)


def test_init_from_starts_a_fresh_run_from_another_runs_weights(tmp_path):
    source = _toy(tmp_path / "source", "train.steps=20")
    source.fit()
    target = _toy(tmp_path / "target", "train.steps=1", "optimizer.lr=0.0",
                  f"train.init_from={tmp_path / 'source'}")
    assert target.restore_latest() == 0
    for a, b in zip(source.model.weights, target.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_float16_checkpoint_restores_and_initialises_as_float32(tmp_path):
    source = _toy(tmp_path / "source", "train.steps=1")
    checkpoint = tf.train.Checkpoint(model=source.model)
    prefix = checkpoint.save(str(tmp_path / "f32" / "ckpt"))
    min_size = 100   # the toy's tensors are small: some narrowed, some kept
    keys = checkpoints.variable_keys(source.model, prefix)
    assert sorted(map(id, keys.values())) == sorted(map(id, source.model.weights))
    large = [key for key, v in keys.items() if np.size(v) >= min_size]
    narrowed, kept = checkpoints.save_float16(prefix, tmp_path / "f16" / "ckpt-1", large)
    assert narrowed == len(large) > 0 and kept > 0
    target = _toy(tmp_path / "target", "train.steps=1", "optimizer.lr=0.0")
    checkpoints.restore_into(tf.train.Checkpoint(model=target.model),
                             str(tmp_path / "f16" / "ckpt-1"), "the toy").expect_partial()
    for a, b in zip(source.model.weights, target.model.weights):
        expected = a.numpy().astype("float16").astype("float32") if np.size(a) >= \
            min_size else a.numpy()
        assert b.dtype == "float32"
        np.testing.assert_array_equal(b.numpy(), expected)
    config_lib.save_json(source.config, tmp_path / "f16")   # init_from finds the run above it
    fresh = _toy(tmp_path / "fresh", "train.steps=1",
                 f"train.init_from={tmp_path / 'f16' / 'ckpt-1'}")
    assert fresh.restore_latest() == 0
    for a, b in zip(target.model.weights, fresh.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_unknown_config_variant_is_one_line(tmp_path):
    result = run_cli("--config", "mixer_64:nonsense", "--dry_run")
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "unknown config variant(s) nonsense" in lines[0], result.stderr


def test_an_error_while_tracing_a_tf_function_prints_its_cause_not_its_header():
    @tf.function
    def bad(x):
        return tf.reshape(x, [5])

    with pytest.raises(ValueError) as caught:
        bad(tf.zeros([3]))
    assert str(caught.value).startswith("in user code:")
    line = train.error_message(caught.value)
    assert "in user code" not in line and "reshape" in line.lower(), line
    assert train.error_message(ValueError("first\nsecond")) == "first"


def test_no_gpu_warning_names_the_cost_and_the_cpu_recipe():
    """Only a full-size pose config with no GPU visible gets the line; it names the config's
    CPU recipe (its other variants kept) and a time estimate."""
    line = train.no_gpu_warning(config_lib.load_config("transformer_64:weak"), [])
    assert line.startswith("warning: no GPU found: transformer_64:weak (200,000 steps x 32")
    assert "transformer_64:cpu,weak is the CPU recipe" in line and "estimate" in line
    assert "~25 days" in line                     # 6.4M images at the measured ~3 images/s
    assert "\n" not in line
    gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    for name, gpus in (("mixer_64", [gpu]), ("mixer_64:cpu", []), ("mixer_64:cpu,long", []),
                       ("digits_cnn", [])):
        assert train.no_gpu_warning(config_lib.load_config(name), gpus) is None, name


def test_cli_warns_before_training_on_a_cpu_and_goes_on(tmp_path, capsys, monkeypatch):
    started = []

    class Trainer:
        def __init__(self, config, workdir):
            started.append(config.config_name)

        def fit(self, from_step=None):
            pass

    monkeypatch.setattr(train, "Trainer", Trainer)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert train.main(["--config", "mixer_64", "--workdir", str(tmp_path / "w")]) == 0
    assert started == ["mixer_64"]
    err = capsys.readouterr().err
    assert "warning: no GPU found: mixer_64" in err and "mixer_64:cpu is the CPU recipe" in err
    assert train.main(["--config", "mixer_64:cpu", "--workdir", str(tmp_path / "c")]) == 0
    assert "no GPU found" not in capsys.readouterr().err
