"""Imports point one way: core <- data <- models <- eval <- training <- entry points
(docs/layers.md); tools/import_graph.py is the checker, and it must catch a wrong import."""
import subprocess
import sys
from pathlib import Path

from tools import import_graph

ROOT = Path(__file__).resolve().parents[1]


def test_the_project_has_no_import_against_the_layering():
    known, edges = import_graph.imports(ROOT)
    assert {"pose_era.era", "training.driver", "eval.pose_eval", "pose_era.train"} <= set(known)
    assert "training.tasks" in edges["training.driver"]  # the walk sees real imports
    assert import_graph.violations(edges) == []
    run = subprocess.run([sys.executable, "tools/import_graph.py", "--check"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "no import against the layering" in run.stdout, run.stdout


def _tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_upward_and_entry_point_imports_are_caught(tmp_path):
    root = _tree(tmp_path, {
        "pose_era/__init__.py": "",
        "pose_era/geometry.py": "def f():\n    from models import heads  # lazy, still counted\n",
        "pose_era/train.py": "from training import driver\n",
        "models/__init__.py": "", "models/heads.py": "from pose_era import geometry\n",
        "eval/__init__.py": "", "eval/h36m.py": "from training import checkpoints\n",
        "eval/report.py": "from . import h36m\n",
        "training/__init__.py": "", "training/driver.py": "", "training/checkpoints.py": "",
    })
    _, edges = import_graph.imports(root)
    bad = {(s, t) for s, t, _ in import_graph.violations(edges)}
    assert bad == {("pose_era.geometry", "models.heads"), ("eval.report", "eval.h36m")}
    run = subprocess.run([sys.executable, str(ROOT / "tools/import_graph.py"), "--check",
                          "--root", str(root)], capture_output=True, text=True)
    assert run.returncode == 1 and "pose_era.geometry -> models.heads" in run.stdout
