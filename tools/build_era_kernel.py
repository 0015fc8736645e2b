"""Build ERA's fused CPU kernel (a TensorFlow custom op) into build/era_kernel.so.

Usage: python tools/build_era_kernel.py [--force]

Compiles pose_era/era/kernels/*.cc with g++ (or $CXX) and TensorFlow's own compile and link
flags. Skips the build when the library is up to date (same sources, flags, compiler and
TensorFlow version, recorded in build/era_kernel.so.stamp). A compile error prints the
compiler's output and exits 1. Without a C++ compiler it says so and exits 0: ERA then runs its
plain-TF path (slower, same results).
"""
import argparse
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _kernel_paths():
    """SOURCES and LIBRARY from pose_era/era/kernel.py, loaded by path: importing the package
    would import TensorFlow (seconds), which the up-to-date check does not need."""
    path = Path(__file__).resolve().parents[1] / "pose_era" / "era" / "kernel.py"
    spec = importlib.util.spec_from_file_location("era_kernel_paths", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SOURCES, module.LIBRARY


SOURCES, LIBRARY = _kernel_paths()



def _simd_flags():
    """AVX2+FMA when this x86-64 CPU has them (the library is built where it runs, by `make`).

    Not -march=native: on AVX-512 FP16 machines it switches Eigen (inside TF's headers) to code
    that g++ 12 cannot compile, and the kernel is memory-bound, so AVX2 is enough.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return ["-mavx2", "-mfma"] if "avx2" in flags and "fma" in flags else []


OPT_FLAGS = ["-O3", *_simd_flags(), "-shared", "-fPIC", "-Wno-deprecated-declarations"]


def _stamp(cxx):
    try:
        tf_version = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tf_version = "unknown"
    h = hashlib.sha256()
    for src in SOURCES:
        h.update(src.read_bytes())
    h.update(" ".join([cxx, *OPT_FLAGS, tf_version, sys.executable]).encode())
    return h.hexdigest()


def build(force=False):
    """Builds the library unless up to date; returns a process exit status."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        print(f"build_era_kernel: C++ compiler '{cxx}' not found; ERA will use its plain "
              "TensorFlow path. Install g++ (or set CXX) and run `make kernels` for the fused "
              "kernel.", file=sys.stderr)
        return 0
    stamp_path = LIBRARY.with_name(LIBRARY.name + ".stamp")
    stamp = _stamp(cxx)
    if (not force and LIBRARY.exists() and stamp_path.exists()
            and stamp_path.read_text() == stamp):
        print(f"build_era_kernel: {LIBRARY} is up to date")
        return 0

    import tensorflow as tf  # slow import, only when a build is needed

    LIBRARY.parent.mkdir(parents=True, exist_ok=True)
    tmp = LIBRARY.with_name(f".{LIBRARY.name}.{os.getpid()}.tmp")
    cmd = [cxx, *tf.sysconfig.get_compile_flags(), *OPT_FLAGS, *map(str, SOURCES),
           "-o", str(tmp), *tf.sysconfig.get_link_flags()]
    print("build_era_kernel:", " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        sys.stderr.write(result.stdout + result.stderr)
        print(f"build_era_kernel: compiling {', '.join(s.name for s in SOURCES)} failed "
              f"(exit {result.returncode}); see the compiler output above.", file=sys.stderr)
        return 1
    os.replace(tmp, LIBRARY)
    stamp_tmp = stamp_path.with_name(stamp_path.name + ".tmp")
    stamp_tmp.write_text(stamp)
    os.replace(stamp_tmp, stamp_path)
    print(f"build_era_kernel: built {LIBRARY}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    return build(force=args.force)


if __name__ == "__main__":
    sys.exit(main())
