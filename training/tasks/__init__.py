"""Tasks plug a model, its data and its loss into the one training driver (training.driver).

The interface each task module implements is written down in docs/contracts.md ("Task
interface"); `get` turns `config.task` into the module.
"""
import importlib
import pkgutil

from pose_era.config import ConfigError


def available():
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name):
    """Returns the module `training.tasks.<name>`, or any importable dotted module path.

    An unknown name is a ConfigError.
    """
    if "." in name:
        return importlib.import_module(name)
    if name not in available():
        raise ConfigError(f"unknown task '{name}'; choose one of: {', '.join(available())}")
    return importlib.import_module(f"training.tasks.{name}")
