"""Locating and loading ERA's fused CPU kernel (a TensorFlow custom op built by `make kernels`).

The library is optional: when `build/era_kernel.so` is missing or cannot be loaded, ERA runs its
plain-TF path and this module logs one warning saying how to build the kernel.
"""
import functools
import logging
from pathlib import Path

# No TensorFlow import at module level: tools/build_era_kernel.py reads the paths below without
# paying for it.
REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = tuple(sorted((Path(__file__).resolve().parent / "kernels").glob("*.cc")))
LIBRARY = REPO_ROOT / "build" / "era_kernel.so"

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def load():
    """The loaded op module (with `era_forward`, `era_backward`), or None after one warning."""
    import tensorflow as tf

    if not LIBRARY.exists():
        log.warning("ERA fused CPU kernel not built (%s missing): using the plain TensorFlow "
                    "path, which is slower. Build it with `make kernels`.", LIBRARY)
        return None
    if any(src.stat().st_mtime > LIBRARY.stat().st_mtime for src in SOURCES):
        log.warning("ERA fused CPU kernel %s is older than its source; run `make kernels`.",
                    LIBRARY)
    try:
        return tf.load_op_library(str(LIBRARY))
    except (tf.errors.NotFoundError, OSError) as err:
        log.warning("ERA fused CPU kernel %s failed to load (%s): using the plain TensorFlow "
                    "path. Rebuild it with `make kernels`.", LIBRARY, err)
        return None
