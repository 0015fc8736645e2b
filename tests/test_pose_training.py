"""The pose task through the training driver: two logical devices, evaluation, resume."""
import numpy as np
import tensorflow as tf

from tests.tiny_pose_workdir import tiny_overrides
from training import config as config_lib
from training import checkpoints, driver as train


def _config(tmp_path, steps):
    config = config_lib.load_config("mixer_64:cpu")
    return config_lib.apply_overrides(config, [
        *tiny_overrides(tmp_path), "model.head.depth=2",   # the stick-figure body: a quick test
        f"train.steps={steps}", "train.batch_size=4", "train.ckpt_every=1", "train.eval_every=2",
        "train.image_every=2", "train.log_every=1", "train.devices=['/cpu:0', '/cpu:1']",
        "data.synth_train=8", "data.synth_test=4", "data.val_size=4", "data.shuffle_buffer=8"])


def test_pose_training_distributed_evaluates_and_resumes(tmp_path):
    workdir = tmp_path / "run"
    trainer = train.Trainer(_config(tmp_path, 2), workdir)
    assert trainer.strategy.num_replicas_in_sync == 2
    results = trainer.fit()
    assert set(results) == {"mpjpe", "pa_mpjpe", "mpvpe"}  # the one evaluator: MPVPE too
    assert all(np.isfinite(v) and v > 0 for v in results.values())
    assert checkpoints.step_of(tf.train.latest_checkpoint(str(workdir / "ckpt"))) == 2
    events = list((workdir / "tb").glob("events.out.tfevents.*"))
    tags = {v.tag for e in events for record in tf.compat.v1.train.summary_iterator(str(e))
            for v in record.summary.value}
    assert {"train/loss", "eval/mpjpe", "val/prediction"} <= tags

    # Resuming into mirrored variables gives back the model and Adam's state as they were (a
    # further step after a resume is the single-device test_train.py::test_resume_after_kill_9's;
    # tracing the two-replica step again would double this test's time)
    resumed = train.Trainer(_config(tmp_path, 3), workdir)
    assert resumed.restore_latest() == 2
    assert int(resumed.optimizer.iterations.numpy()) == 2
    for before, after in zip(trainer.model.weights + trainer.optimizer.variables,
                             resumed.model.weights + resumed.optimizer.variables):
        np.testing.assert_array_equal(before.numpy(), after.numpy(), err_msg=before.path)
