"""Every config key the code reads is declared in configs/ (with its default), and no library code
hides an undeclared key behind a `.get(key, default)` or a `key in config` test.

The walk is static (ast) over the library and training code: attribute chains rooted at a config
(`config.a.b`, `self.config.a.b`, an alias such as `tc = config.train`, or a parameter whose
conventional name says which section it is) must name a declared key of some named config.
"""
import ast
import itertools
from pathlib import Path

import pytest

from data_pipelines import pipeline
from tests import data_files as files
from training import config as config_lib

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("pose_era", "data_pipelines", "models", "eval", "training")
# The config machinery itself: it tests membership to validate --set keys, it reads none.
MACHINERY = ("training/config.py",)
# ConfigDict's own methods: a chain ending in one of these reads no key.
METHODS = {"to_dict", "update", "unlocked", "items", "keys", "values", "lock", "to_json",
           "to_json_best_effort", "copy_and_resolve_references", "get"}
# Parameters named for the section they receive (training/driver.py's helpers).
SECTION_PARAMS = {"tc": ("train",), "train_config": ("train",), "opt": ("optimizer",),
                  "opt_config": ("optimizer",), "loss_config": ("loss",), "m": ("model",)}
VARIANTS = {"pose": (None, "cpu", "cpu,long", "weak", "finetune"), "classification": (None, "quick")}


def declared_keys(leaves_only=False):
    """Dotted keys (and, unless leaves_only, sections) of every named config and variant."""
    keys = set()
    for name in config_lib.available_configs():
        base = config_lib.load_config(name)
        for arg in VARIANTS[base.task]:
            config = config_lib.load_config(f"{name}:{arg}" if arg else name)
            stack = [((), config.to_dict())]
            while stack:
                prefix, node = stack.pop()
                for key, value in node.items():
                    if not (leaves_only and isinstance(value, dict)):
                        keys.add(".".join(prefix + (key,)))
                    if isinstance(value, dict):
                        stack.append((prefix + (key,), value))
    return keys


def _root(node, aliases):
    """The config path a Name/Attribute node stands for, or None."""
    if isinstance(node, ast.Name):
        if node.id == "config":
            return ()
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
            node.value.id == "self" and node.attr == "config":
        return ()
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id == "_data" and node.args and _root(node.args[0], aliases) == ():
        return ("data",)  # data_pipelines/pipeline.py's accessor of config.data
    return None


def _chain(node, aliases):
    """(config path, attribute names read after it) of an attribute chain, or None."""
    attrs = []
    while isinstance(node, ast.Attribute):
        root = _root(node, aliases)
        if root is not None:
            return root, list(reversed(attrs))
        attrs.append(node.attr)
        node = node.value
    root = _root(node, aliases)
    return (root, list(reversed(attrs))) if root is not None else None


def config_reads(source, filename="<string>"):
    """(reads, hidden): dotted keys read from configs, and `file:line: what` for each `.get` or
    `in` test on a config."""
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):  # parent links: only the outermost attribute of a chain counts
        for child in ast.iter_child_nodes(node):
            child.parent = node
    reads, hidden = set(), set()
    for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))] + \
            [tree]:
        aliases = {}
        if isinstance(func, ast.FunctionDef):
            for arg in func.args.args + func.args.kwonlyargs:
                if arg.arg in SECTION_PARAMS:
                    aliases[arg.arg] = SECTION_PARAMS[arg.arg]
        body = list(ast.walk(func))
        for node in body:  # aliases first: x = config.a.b
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name):
                found = _chain(node.value, aliases)
                if found and not set(found[1]) & METHODS:
                    aliases[node.targets[0].id] = found[0] + tuple(found[1])
        for node in body:
            if isinstance(node, ast.Attribute) and not isinstance(getattr(node, "parent", None),
                                                                  ast.Attribute):
                found = _chain(node, aliases)
                if found:
                    path, attrs = found
                    keys = list(itertools.takewhile(lambda a: a not in METHODS, attrs))
                    if keys:
                        reads.add(".".join(path + tuple(keys)))
                    if "get" in attrs:
                        hidden.add(f"{filename}:{node.lineno}: .get on config "
                                      f"{'.'.join(path + tuple(keys)) or 'config'}")
            if isinstance(node, ast.Compare) and any(isinstance(o, (ast.In, ast.NotIn))
                                                     for o in node.ops):
                for right in node.comparators:
                    found = _chain(right, aliases)
                    if found:
                        hidden.add(f"{filename}:{node.lineno}: `in` test on config "
                                      f"{'.'.join(found[0] + tuple(found[1])) or 'config'}")
    return reads, sorted(hidden)


def library_reads():
    reads, hidden = {}, []
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if rel in MACHINERY:
                continue
            source = path.read_text()
            r, h = config_reads(source, rel)
            hidden += h
            for key in r:
                reads.setdefault(key, rel)
    return reads, hidden


def test_every_config_key_the_library_reads_is_declared():
    declared = declared_keys() | {"config_name", "task"}
    leaves = declared_keys(leaves_only=True)

    def is_declared(key):  # a read past a leaf is a method of its value (data.name.split)
        parts = key.split(".")
        return key in declared or any(".".join(parts[:n]) in leaves for n in range(1, len(parts)))
    reads, _ = library_reads()
    assert len(reads) > 60  # the walk sees the code's reads (a broken walk finds none)
    undeclared = sorted(f"{key} ({where})" for key, where in reads.items() if not is_declared(key))
    assert not undeclared, f"read but declared in no config: {undeclared}"


def test_no_library_code_hides_a_key_behind_a_default():
    _, hidden = library_reads()
    assert not hidden, hidden


def test_the_walk_catches_an_undeclared_key_and_a_hidden_default():
    source = '''
def f(config):
    tc = config.train
    x = config.data.not_a_declared_key
    y = tc.get("steps", 5)
    if "eval_every" in tc:
        pass
    return config.model.markerposer.hidden, self_free(tc.batch_size)
'''
    reads, hidden = config_reads(source, "planted.py")
    assert {"data.not_a_declared_key", "train.batch_size",
            "model.markerposer.hidden"} <= reads
    assert "data.not_a_declared_key" not in declared_keys()
    assert len(hidden) == 2 and "planted.py:5: .get" in hidden[0] and "planted.py:6: `in`" in hidden[1]


def test_set_data_protocol_and_mix_weights(tmp_path):
    """`--set data.protocol=1` (and mix_weights) used to fail as unknown keys; protocol 1 now
    picks SPIN's protocol-1 file for the test split."""
    config = config_lib.apply_overrides(config_lib.load_config("mixer_64"), [
        "data.protocol=1", "data.mix_weights=(1.0,)", "data.name=h36m", f"data.dir={tmp_path}",
        "data.image_size=32", "eval.batch_size=2"])
    assert config.data.protocol == 1 and list(config.data.mix_weights) == [1.0]
    files.spin_npz(tmp_path, n=3, ext=".jpg")
    (tmp_path / "data.npz").rename(tmp_path / "h36m_valid_protocol1.npz")
    batches = list(pipeline.build_dataset(config, "test"))
    assert sum(int(b["image"].shape[0]) for b in batches) == 3
    config.data.protocol = 2
    with pytest.raises(FileNotFoundError, match="h36m_valid_protocol2.npz"):
        pipeline.build_dataset(config, "test")
