"""Print the project's import graph between layers, and check that imports point one way.

    python tools/import_graph.py              # package-level graph: who imports whom
    python tools/import_graph.py --modules    # module-level edges that cross a package
    python tools/import_graph.py --check      # exit 1 listing every import that goes upwards
    python tools/import_graph.py --root DIR   # another checkout (e.g. an old commit's worktree)

The layers (docs/layers.md), lowest first; a module may import its own layer and those below:

    core      pose_era (ERA, body model, geometry, joint constants, renderer, losses, I/O)
    data      data_pipelines
    models    models
    eval      eval (metrics, the pose evaluator, demo inference)
    training  training (driver, tasks, checkpoints, config), configs
    entry     tools/*, and the two fixed commands `python -m pose_era.train`, `python -m eval.h36m`

Entry points are the top: they may import anything, and nothing may import them. Imports are
read statically (ast), including those inside functions, so a lazy import counts too.
"""
import argparse
import ast
import collections
import sys
from pathlib import Path

LAYERS = ("core", "data", "models", "eval", "training", "entry")
PACKAGES = {"pose_era": "core", "data_pipelines": "data", "models": "models", "eval": "eval",
            "training": "training", "configs": "training", "tools": "entry"}
# Fixed commands of the design's contract that live inside a lower package's folder.
ENTRY_MODULES = ("pose_era.train", "eval.h36m")


def module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module):
    if any(module == e or module.startswith(e + ".") for e in ENTRY_MODULES):
        return "entry"
    return PACKAGES.get(module.split(".")[0])


def _resolve(node, module, is_package, known):
    """Project modules a node imports: `from pose_era import geometry` -> pose_era.geometry,
    `from pose_era.era import ERA` -> pose_era.era (the longest known prefix)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".")
            keep = len(parts) - node.level + (1 if is_package else 0)
            base = ".".join(parts[:keep] + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                 for a in node.names]
    found = []
    for name in names:
        parts = name.split(".")
        found += [".".join(parts[:n]) for n in range(len(parts), 0, -1)
                  if ".".join(parts[:n]) in known][:1]
    return found


def imports(root):
    """{module: {imported project module}} for every .py file under the project's packages."""
    root = Path(root)
    known = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else []:
            known[module_name(path, root)] = path
    edges = collections.defaultdict(set)
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _resolve(node, module, path.name == "__init__.py", known):
                if target != module:
                    edges[module].add(target)
    return known, edges


def violations(edges):
    """(importer, imported, why) for every import that points to a higher layer or an entry."""
    bad = []
    for source, targets in sorted(edges.items()):
        low = layer_of(source)
        for target in sorted(targets):
            high = layer_of(target)
            if low is None or high is None:
                continue
            if high == "entry" and not target.startswith("tools"):
                bad.append((source, target, "imports an entry point"))
            elif LAYERS.index(high) > LAYERS.index(low):
                bad.append((source, target, f"{low} imports {high}"))
    return bad


def package_graph(edges):
    """{(layer:package) -> {(layer:package)}} between top-level packages (entry modules apart)."""
    def node(module):
        return module if layer_of(module) == "entry" and not module.startswith("tools") else \
            module.split(".")[0]
    graph = collections.defaultdict(set)
    for source, targets in edges.items():
        for target in targets:
            if node(source) != node(target):
                graph[node(source)].add(node(target))
    return graph


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(Path(__file__).resolve().parents[1]),
                   help="checkout to read (default: this one)")
    p.add_argument("--modules", action="store_true", help="module-level cross-package edges")
    p.add_argument("--check", action="store_true", help="exit 1 on an upward import")
    args = p.parse_args(argv)
    _, edges = imports(args.root)
    if args.modules:
        for source, targets in sorted(edges.items()):
            cross = sorted(t for t in targets if t.split(".")[0] != source.split(".")[0])
            if cross:
                print(f"{source} -> {', '.join(cross)}")
    else:
        graph = package_graph(edges)
        nodes = set(graph) | {p for p in PACKAGES if (Path(args.root) / p).is_dir()}
        for source in sorted(nodes, key=lambda n: (LAYERS.index(layer_of(n) or "entry"), n)):
            targets = ", ".join(sorted(graph.get(source, ()))) or "(nothing of the project)"
            print(f"[{layer_of(source) or '?'}] {source} -> {targets}")
    bad = violations(edges)
    if bad:
        print(f"\n{len(bad)} import(s) against the layering (docs/layers.md):")
        for source, target, why in bad:
            print(f"  {source} -> {target}  ({why})")
    else:
        print("\nno import against the layering")
    return 1 if bad and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
