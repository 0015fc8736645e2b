"""`pip install .` gives ERA to another project: only the core package is installed, it imports
and runs outside the repository with TensorFlow, Keras, NumPy and SciPy, and the fused kernel
falls back to plain TensorFlow with one warning where none is built (offline: --no-index)."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = """
import logging, sys
import numpy as np, tensorflow as tf
from pose_era.era import ERA
import pose_era.era.kernel as kernel
layer = ERA(degree=2, init="relu")
x = tf.constant(np.linspace(-3, 3, 13, dtype=np.float32)[None])
y = layer(x).numpy()
assert np.all(np.isfinite(y)) and abs(float(y[0, -1]) - 3.0) < 0.1, y
app = {m.split(".")[0] for m in sys.modules} & {"models", "training", "data_pipelines", "eval",
                                                 "configs", "tools"}
assert not app, app
print("ERA from", kernel.__file__, "kernel in checkout:", kernel.IN_CHECKOUT)
"""


def test_pip_install_gives_era_to_another_project(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pose_era", src / "pose_era",
                    ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(site), str(src)],
        capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    installed = {p.name for p in site.iterdir()}
    assert "pose_era" in installed and not installed & {"models", "training", "eval", "tools"}
    assert (site / "pose_era" / "era" / "fits.json").is_file()
    assert (site / "pose_era" / "era" / "kernels" / "era_op.cc").is_file()
    work = tmp_path / "elsewhere"
    work.mkdir()
    run = subprocess.run([sys.executable, "-c", CHECK], cwd=work, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin",
                              "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"ERA from {site}" in run.stdout and "kernel in checkout: False" in run.stdout
    warnings = [line for line in run.stderr.splitlines() if "fused CPU kernel" in line]
    assert len(warnings) == 1 and "POSE_ERA_KERNEL" in warnings[0], run.stderr[-2000:]
