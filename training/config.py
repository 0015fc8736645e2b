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
import pkgutil
from pathlib import Path

import ml_collections

import configs as _configs_package
from pose_era import io


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


def _import(load, where):
    """Runs a config module's code; its syntax or import errors become one-line ConfigErrors."""
    try:
        return load()
    except SyntaxError as err:
        raise ConfigError(f"config {where} has a syntax error at line {err.lineno}: "
                          f"{err.msg}") from None
    except (ImportError, NameError, AttributeError, TypeError, ValueError) as err:
        raise ConfigError(f"config {where} failed to load: {type(err).__name__}: {err}") from None


def _module_from_file(path):
    if not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist")
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    _import(lambda: spec.loader.exec_module(module), path)
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
        module = _import(lambda: importlib.import_module(f"configs.{name}"), f"configs/{name}.py")
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
    return io.write_text(Path(workdir) / "config.json",
                         config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def _merged(defaults, saved):
    """`saved` over `defaults`, section by section (keys of either side kept)."""
    out = dict(defaults)
    for key, value in saved.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _declared_defaults(config_name):
    """The base config (no variant argument) a saved config was made from, as a dict; None when
    it cannot be found (a config file that is gone, a name from another version)."""
    name = str(config_name or "").partition(":")[0]
    if not name or not (name.endswith(".py") and Path(name).is_file()
                        or name in available_configs()):
        return None
    try:
        return json.loads(load_config(name).to_json_best_effort())
    except ConfigError:
        return None


def load_json(workdir):
    """Reads WORKDIR/config.json back into a ConfigDict (lists stay lists).

    A key the code declares but an older config.json lacks takes its value from the base config
    of the saved config_name (without variants: a new key's base default is the behaviour the
    code had before the key existed), so older workdirs and released models still build."""
    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"no config.json in {workdir}: is it a training workdir?")
    try:
        saved = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); restore it from run_info.json's "
                          "command or delete the workdir") from None
    defaults = _declared_defaults(saved.get("config_name")) if isinstance(saved, dict) else None
    return ml_collections.ConfigDict(_merged(defaults, saved) if defaults else saved)


# Keys a resumed run may change: how long it runs, how often it logs, saves and evaluates, where
# it runs, and the learning-rate knobs that recover from a divergence. A key ending in "." names
# a whole section. Everything else changes the model, its data or its optimizer state.
RESUMABLE_KEYS = ("config_name", "train.steps", "train.epochs", "train.log_every",
                  "train.ckpt_every", "train.eval_every", "train.devices", "train.jit_compile",
                  "train.init_from", "optimizer.lr", "optimizer.clip_norm", "eval.")


def _flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resume_conflicts(config, workdir):
    """Keys whose value in `config` differs from WORKDIR/config.json and that a resume may not
    change (see RESUMABLE_KEYS); [] when there is no config.json. A key present on one side
    only (after load_json's declared defaults) is compatible."""
    if not (Path(workdir) / "config.json").is_file():
        return []
    old = _flat(json.loads(json.dumps(load_json(workdir).to_dict())))
    new = _flat(json.loads(config.to_json_best_effort()))
    allowed = lambda k: any(k == r or (r.endswith(".") and k.startswith(r))
                            for r in RESUMABLE_KEYS)
    return [f"{k} ({old[k]!r} -> {new[k]!r})" for k in sorted(set(old) & set(new))
            if old[k] != new[k] and not allowed(k)]


def check_resume(config, workdir):
    """ConfigError (one line, naming the keys) when `config` would change the model, data or
    optimizer of the run saved in `workdir`; nothing is written either way."""
    conflicts = resume_conflicts(config, workdir)
    if conflicts:
        shown = ", ".join(conflicts[:6]) + (f" and {len(conflicts) - 6} more"
                                            if len(conflicts) > 6 else "")
        raise ConfigError(
            f"{workdir} was trained with another config: {shown}; resume with the same config "
            "and --set values, or use a new --workdir (train.init_from=DIR starts from this "
            "run's weights)")
