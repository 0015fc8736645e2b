"""Benchmark ERA's forward+backward against ReLU, Swish and GELU on one tensor, in one process.

Usage: python tools/bench_era.py [--shape 32 56 56 128] [--rounds 7] [--iters 3]
                                 [--sharing layer|channel] [--modes graph xla]

Each step computes y = act(x) and the gradients w.r.t. x and every activation parameter for an
upstream gradient dy (float32). Variants run round-robin (every round times each variant), so
load from other processes hits them alike. Wall and CPU (process, all threads) times are medians
over rounds x iters; ratios against Swish in the same mode are medians of per-round ratios,
which is what stays stable on a shared machine. Peak memory: TensorFlow's CPU allocator peak
during one step, above what was allocated before it. XLA mode (jit_compile) always uses ERA's plain-TF path,
because XLA cannot compile the fused custom op. Prints a markdown table.
"""
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # one tf.function per variant is intended, not retracing

from pose_era.era import ERA, kernel  # noqa: E402
from pose_era.era.ops import era_activation  # noqa: E402


def _variants(sharing, channels):
    """name -> (activation fn(x, params), params)."""
    out = {"ReLU": (lambda x, p: tf.nn.relu(x), []),
           "Swish": (lambda x, p: tf.nn.silu(x), []),
           "GELU": (lambda x, p: tf.nn.gelu(x, approximate=False), [])}
    for degree in (2, 4):
        layer = ERA(degree=degree, init="swish", sharing=sharing)
        layer.build((None, channels))
        params = [tf.identity(layer.numerator.value), tf.identity(layer.denominator.value)]
        for path in ("fused", "plain"):
            if path == "fused" and kernel.load() is None:
                continue
            out[f"ERA degree {degree} ({path})"] = (
                lambda x, p, path=path: era_activation(x, p[0], p[1], path=path), params)
    return out


def _step(fn, params, x, dy, jit):
    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            tape.watch([x, *params])
            y = fn(x, params)
        return tape.gradient(y, [x, *params], output_gradients=dy)
    return step


def _median_ratio(times, name, base, iters):
    """Median over rounds of (median time of `name` / median time of `base`) in that round."""
    rounds = len(times[name]) // iters
    return statistics.median(
        statistics.median(times[name][r * iters:(r + 1) * iters])
        / statistics.median(times[base][r * iters:(r + 1) * iters]) for r in range(rounds))


def _run(step):
    grads = step()
    for g in grads:
        g.numpy()


def _peak_mb(step):
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    tf.config.experimental.reset_memory_stats("CPU:0")
    _run(step)
    return (tf.config.experimental.get_memory_info("CPU:0")["peak"] - before) / 2 ** 20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[32, 56, 56, 128])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--sharing", choices=("layer", "channel"), default="layer")
    parser.add_argument("--modes", nargs="+", choices=("graph", "xla"), default=["graph", "xla"])
    args = parser.parse_args(argv)

    x = tf.random.stateless_normal(args.shape, seed=(1, 2))
    dy = tf.random.stateless_normal(args.shape, seed=(3, 4))
    variants = _variants(args.sharing, args.shape[-1])
    results = {}
    for mode in args.modes:
        steps = {}
        for name, (fn, params) in variants.items():
            if mode == "xla" and "fused" in name:
                continue
            label = name.replace(" (plain)", "") if mode == "xla" else name
            steps[label] = _step(fn, params, x, dy, jit=mode == "xla")
            _run(steps[label])  # trace, compile, warm up
            _run(steps[label])
        wall = {name: [] for name in steps}
        cpu = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                for _ in range(args.iters):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    _run(step)
                    wall[name].append(time.perf_counter() - start)
                    cpu[name].append(time.process_time() - start_cpu)
        for name, step in steps.items():
            results[(mode, name)] = (
                statistics.median(wall[name]) * 1e3,
                _median_ratio(wall, name, "Swish", args.iters),
                statistics.median(cpu[name]) * 1e3,
                _median_ratio(cpu, name, "Swish", args.iters), _peak_mb(step))

    print(f"Forward+backward of act(x), x float32 {'x'.join(map(str, args.shape))}, "
          f"sharing={args.sharing}; median of {args.rounds}x{args.iters}; TF {tf.__version__}, "
          f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}).\n")
    print("| mode | activation | wall (ms) | x Swish | CPU (ms) | x Swish | peak memory (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for (mode, name), (ms, ratio, cpu_ms, cpu_ratio, mb) in results.items():
        print(f"| {mode} | {name} | {ms:.1f} | {ratio:.2f} | {cpu_ms:.1f} | {cpu_ratio:.2f} | "
              f"{mb:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
