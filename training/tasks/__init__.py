"""Tasks plug a model, its data, its loss and its evaluation into the one training driver.

A task is an object built from the config: `tasks.get(config.task)(config)`. The interface is
`training.tasks.base.Task` (and docs/contracts.md, "Task interface"); `get` turns a name into
the class.
"""
import importlib

from training.config import ConfigError

# config.task -> "module:class" of the built-in tasks.
BUILT_IN = {"pose": "training.tasks.pose:PoseTask",
            "classification": "training.tasks.classification:ClassificationTask"}


def available():
    return sorted(BUILT_IN)


def get(name):
    """The Task class of a built-in name, or of `package.module.ClassName` (e.g. a test's task).

    An unknown name is a ConfigError."""
    if name in BUILT_IN:
        module, _, cls = BUILT_IN[name].partition(":")
    elif "." in name:
        module, _, cls = name.rpartition(".")
    else:
        raise ConfigError(f"unknown task '{name}'; choose one of: {', '.join(available())}")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"task '{name}' cannot be loaded: {err}") from None
