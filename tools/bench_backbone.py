"""Training-step time of MobileNetV2 as keras.applications builds it against the fused form the
project trains (models/fused_layers.py: TF's fused BatchNorm kernel, pads folded into "same"
convolutions; the same function), side by side in one process.

Usage: python tools/bench_backbone.py [--image_size 160] [--batch 16] [--rounds 5] [--iters 3]

Both networks get the same weights and the same batch; a step is forward (training mode),
a squared-output loss and the gradients of every trainable variable (graph mode, no optimizer,
no XLA). Rounds alternate plain, fused; the table gives median seconds per step and the median of
the per-round ratios fused/plain, which is what stays stable on a shared machine.
"""
import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pose_era import io  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image_size", type=int, default=160)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=3, help="steps timed per round and network")
    args = p.parse_args(argv)
    if args.image_size % 32 or args.image_size < 64 or min(args.batch, args.rounds,
                                                             args.iters) < 1:
        p.error("--image_size must be a multiple of 32 and >= 64; --batch, --rounds and "
                "--iters >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras
    import tensorflow as tf
    from models.fused_layers import fuse

    size = args.image_size
    plain = keras.applications.MobileNetV2(include_top=False, weights=None,
                                           input_shape=(size, size, 3))
    fused = fuse(plain)
    fused.set_weights(plain.get_weights())
    x = tf.random.uniform((args.batch, size, size, 3), -1.0, 1.0, seed=0)

    def step_of(model):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x, training=True)))
            return tape.gradient(loss, model.trainable_variables)[0]
        return step

    steps = {"plain": step_of(plain), "fused": step_of(fused)}
    for step in steps.values():
        step()  # trace
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.iters):
                step().numpy()
            times[name].append((time.perf_counter() - start) / args.iters)
    ratio = statistics.median(f / p for f, p in zip(times["fused"], times["plain"]))
    given = sys.argv[1:] if argv is None else argv
    print(f"Command: `{' '.join(['python tools/bench_backbone.py', shlex.join(given)]).strip()}`  ")
    print(f"Machine: {io.machine_line()}; TensorFlow {tf.__version__}  ")
    print(f"MobileNetV2 at {size} px, batch {args.batch}, training-mode forward + gradients, "
          f"median of {args.rounds} alternating rounds x {args.iters} steps\n")
    print("| network | s/step | images/s |\n|---|---|---|")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"| {name} | {med:.3f} | {args.batch / med:.1f} |")
    print(f"\nfused / plain step time: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
