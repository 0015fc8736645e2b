"""Locating and loading ERA's fused CPU kernel (a TensorFlow custom op built by `make kernels`).

The library is optional: when it is missing or cannot be loaded, ERA runs its plain-TF path and
this module logs one warning saying how to get the kernel. In a repository checkout the library
is `build/era_kernel.so`; where pose_era is installed as a package (`pip install .`) it is
$POSE_ERA_KERNEL, if set, else none (the plain path, one warning).
"""
import functools
import logging
import os
from pathlib import Path

# No TensorFlow import at module level: tools/build_era_kernel.py reads the paths below without
# paying for it.
REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = tuple(sorted((Path(__file__).resolve().parent / "kernels").glob("*.cc")))
IN_CHECKOUT = (REPO_ROOT / "tools" / "build_era_kernel.py").is_file()
LIBRARY = Path(os.environ["POSE_ERA_KERNEL"]) if os.environ.get("POSE_ERA_KERNEL") else (
    REPO_ROOT / "build" / "era_kernel.so")
HOW_TO_BUILD = ("run `make kernels`" if IN_CHECKOUT else
                "build it in a pose_era checkout (`make kernels`) and set POSE_ERA_KERNEL to "
                "the .so")

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def load():
    """The loaded op module (with `era_forward`, `era_backward`), or None after one warning."""
    import tensorflow as tf

    if not LIBRARY.exists():
        log.warning("ERA fused CPU kernel not built (%s missing): using the plain TensorFlow "
                    "path, which is slower; to get it, %s.", LIBRARY, HOW_TO_BUILD)
        return None
    if any(src.stat().st_mtime > LIBRARY.stat().st_mtime for src in SOURCES):
        log.warning("ERA fused CPU kernel %s is older than its source; %s.", LIBRARY,
                    HOW_TO_BUILD)
    try:
        return tf.load_op_library(str(LIBRARY))
    except (tf.errors.NotFoundError, OSError) as err:
        log.warning("ERA fused CPU kernel %s failed to load (%s): using the plain TensorFlow "
                    "path; to rebuild it, %s.", LIBRARY, err, HOW_TO_BUILD)
        return None
