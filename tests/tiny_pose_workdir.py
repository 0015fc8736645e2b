"""A tiny pose workdir (config.json + ckpt/) for the eval CLI and demo tests, built in seconds.

The pose config `mixer_64:cpu` shrunk by `--set`-style overrides (64 px crops, width-16 head,
one block, the stick-figure body model of tests/tiny_body.py), built through the pose task and
saved in the driver's checkpoint layout, untrained: its prediction is the mean body placed in
front of each crop's camera, which is all the geometry tests need.
"""
import tensorflow as tf

from pose_era.body import format as body_format
from tests.tiny_body import tiny_body_arrays
from training import config as config_lib
from training import tasks

STEP = 7
IMAGE_SIZE = 64


def tiny_overrides(root):
    """`--set` values that shrink mixer_64:cpu to the tiny body (written to root) and head."""
    body_path = root / "tiny_body.npz"
    if not body_path.is_file():
        body_format.save(body_path, tiny_body_arrays())
    return [f"body.path={body_path}", "model.num_markers=16", f"data.image_size={IMAGE_SIZE}",
            "model.head.width=16", "model.head.depth=1", "model.head.token_hidden=16",
            "model.head.channel_hidden=16", "model.head.corr_hidden=16",
            "model.head.lift_hidden=16",
            "model.markerposer.hidden=(16,)", "model.markerposer.weights=none",
            "model.markerposer.trainable=true", "optimizer.warmup_steps=0", "eval.batch_size=4",
            f"data.dir={root / 'synth'}"]


def make_workdir(root, step=STEP):
    """Writes root/tiny_body.npz and root/workdir; returns (workdir, config, model)."""
    config = config_lib.load_config("mixer_64:cpu")
    config_lib.apply_overrides(config, tiny_overrides(root))
    workdir = root / "workdir"
    config_lib.save_json(config, workdir)
    model = tasks.get(config.task)(config).build_model()
    checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(step, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(workdir / "ckpt"), max_to_keep=1).save(
        checkpoint_number=step)
    return workdir, config, model
