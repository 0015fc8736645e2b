"""Named configs and `--set key=value` overrides, with one-line errors for every mistake.

A config is `configs/<name>.py` with `get_config(arg=None)` (big_vision style); `NAME:ARG` passes
ARG to it, so variants are arguments rather than copied files. Overrides may only change keys
that exist, and values are coerced to the type already there, so a typo fails loudly instead
of training the wrong model.
"""
import ast
import importlib
import importlib.util
import json
import os
import pkgutil
from pathlib import Path

import ml_collections

import configs as _configs_package


class ConfigError(ValueError):
    """A user mistake in a config name, key or value; the message is the whole explanation."""


def available_configs():
    """Names of all modules in configs/ that define get_config()."""
    names = []
    for info in pkgutil.iter_modules(_configs_package.__path__):
        if info.name.startswith("_") or info.name.startswith("common"):
            continue
        names.append(info.name)
    return sorted(names)


def _module_from_file(path):
    if not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist")
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(spec):
    """Returns the ConfigDict of `NAME`, `NAME:ARG` or `path/to/file.py[:ARG]`.

    ARG is passed to get_config(arg), big_vision style.
    """
    name, _, arg = spec.partition(":")
    if name.endswith(".py"):
        module = _module_from_file(name)
    else:
        choices = available_configs()
        if name not in choices:
            raise ConfigError(f"unknown config '{name}'; choose one of: {', '.join(choices)}")
        module = importlib.import_module(f"configs.{name}")
    try:
        config = module.get_config(arg or None)
    except ValueError as err:  # a config's own check of its argument, e.g. an unknown variant
        raise ConfigError(f"config '{spec}': {err}") from None
    with config.unlocked():
        config.config_name = spec
    return config


def _parse_literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word is a string


def _coerce(key, old, text):
    """Converts the override text to the type of the value it replaces."""
    value = _parse_literal(text)
    if isinstance(old, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(f"--set {key}={text}: expected true or false")
    if old is None or isinstance(old, str):
        return value if old is None else text
    if isinstance(old, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(old, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(old, (tuple, list)) and isinstance(value, (tuple, list)):
        return type(old)(value)
    raise ConfigError(
        f"--set {key}={text}: expected a value of type {type(old).__name__} (now {old!r})")


def apply_overrides(config, overrides):
    """Applies `key.sub=value` strings in order; unknown keys and bad types raise ConfigError."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        node = config
        parts = key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                where = ".".join(parts[:depth]) or "the config"
                valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
                raise ConfigError(
                    f"unknown config key '{key}'; valid keys under {where}: {', '.join(valid)}")
            if depth < len(parts) - 1:
                node = node[part]
        leaf = parts[-1]
        old = node[leaf]
        if isinstance(old, ml_collections.ConfigDict):
            raise ConfigError(f"--set {key}: '{key}' is a section; set one of its keys: "
                              f"{', '.join(sorted(old.keys()))}")
        node[leaf] = _coerce(key, old, text)
    return config


def save_json(config, workdir):
    """Writes the resolved config to WORKDIR/config.json atomically."""
    path = Path(workdir) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def load_json(workdir):
    """Reads WORKDIR/config.json back into a ConfigDict (lists stay lists)."""
    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"no config.json in {workdir}: is it a training workdir?")
    return ml_collections.ConfigDict(json.loads(path.read_text()))
