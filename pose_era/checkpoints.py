"""Finding and restoring training checkpoints, so every tool accepts a workdir or a prefix.

A workdir holds `config.json` and `ckpt/` (tf.train.CheckpointManager). `restore` rebuilds the
model from the saved config through the task's `build_model`, then loads the weights, and
fails with one clear line when the path holds no checkpoint or the model does not match it.
"""
from pathlib import Path

import tensorflow as tf

from pose_era import config as config_lib
from pose_era import tasks


class CheckpointError(ValueError):
    """The path is not a usable checkpoint; the message says why and what to do."""


def find(path):
    """Returns (workdir, checkpoint prefix) for a workdir or a checkpoint prefix."""
    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        prefix = tf.train.latest_checkpoint(str(path / "ckpt"))
        if prefix is None:
            raise CheckpointError(f"{path} has no checkpoint in ckpt/: train first "
                                  f"(python -m pose_era.train --config NAME --workdir {path})")
        return path, prefix
    if Path(str(path) + ".index").is_file():
        for parent in path.parents:
            if (parent / "config.json").is_file():
                return parent, str(path)
        raise CheckpointError(f"no config.json above checkpoint {path}: pass its workdir")
    raise CheckpointError(f"{path} is neither a training workdir (with config.json and ckpt/) "
                          "nor a checkpoint prefix (like WORKDIR/ckpt/ckpt-3)")


def step_of(prefix):
    """The training step stored in a checkpoint."""
    reader = tf.train.load_checkpoint(prefix)
    return int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def restore(path):
    """Returns (config, model, step) rebuilt from a workdir or checkpoint prefix."""
    workdir, prefix = find(path)
    config = config_lib.load_json(workdir)
    model = tasks.get(config.task).build_model(config)
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as err:
        # unmatched objects, or a variable of another shape than config.json builds
        raise CheckpointError(f"checkpoint {prefix} does not match the model of "
                              f"{workdir}/config.json: {str(err).splitlines()[0]}") from None
    return config, model, step_of(prefix)
