"""The default body model: built from Anny on first use and cached (never committed).

Cache folder: `$POSE_ERA_CACHE/body/` if that variable is set, else `<repo>/cache/body/`. The file
name carries the marker count and a format version, so a changed builder never reads a stale
file. A lock file makes concurrent first uses build once; the write itself is atomic.
"""
import fcntl
import os
import sys
from pathlib import Path

from pose_era.body import format as body_format

# Bump when the builder's output changes, so old caches are not reused.
FORMAT_VERSION = 3


def cache_dir():
    root = os.environ.get("POSE_ERA_CACHE")
    root = Path(root) if root else Path(__file__).resolve().parents[2] / "cache"
    return root / "body"


def default_body_model_path(num_markers=64):
    """Path of the cached Anny body model with `num_markers` markers, building it if absent."""
    path = cache_dir() / f"anny_m{int(num_markers)}_v{FORMAT_VERSION}.npz"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same file
        if not path.is_file():
            from pose_era.body import anny
            print(f"body model: {path} not found, building it from Anny once "
                  f"(about 40 s) ...", file=sys.stderr, flush=True)
            body_format.save(path, anny.build(num_markers=num_markers))
            print(f"body model: wrote {path}", file=sys.stderr)
    return path
