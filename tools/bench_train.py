"""Training and inference speed of the pose configs, and ERA's cost against GELU in the same model.

Usage: python tools/bench_train.py [--configs mixer_64,transformer_64,...] [--image_size 480]
                                   [--batch 2] [--repeats 3] [--era_path auto|plain]

For each config two models are built in this one process: the config as it is (ERA, degree from
the config) and the same config with `model.activation=gelu`. Each gets the training driver's own
step (`training.driver.Trainer`: forward, every loss, gradients, clipping, Adam update; graph mode,
no XLA) and a graph-mode inference call, both fed one fixed batch of random inputs of the
example schema's shapes (no dataset needed). Repeats are interleaved (ERA train, GELU train, ERA
infer, GELU infer, then again), so load from other processes hits both models alike; the table
gives medians. ERA/GELU = median ERA train step / median GELU train step (target <= 1.1).
Prints a markdown table with the machine, its load and the command.
"""
import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pose_era import io  # noqa: E402  (no TensorFlow import: cheap before the --help)

CONFIGS = ("mixer_64", "mixer_256", "transformer_64", "transformer_256",
           "resnet50_transformer_256")
VARIANTS = ("era", "gelu")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=",".join(CONFIGS),
                   help="comma-separated pose configs (default: all five)")
    p.add_argument("--image_size", type=int, default=480)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="timed rounds per model (median)")
    p.add_argument("--era_path", choices=("auto", "plain"), default="auto",
                   help="auto: ERA's fused CPU kernel when built; plain: force plain TF ops")
    args = p.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown config(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if args.image_size < 32 or args.batch < 1 or args.repeats < 1:
        p.error("--image_size must be >= 32, --batch and --repeats >= 1")
    return args


def random_batch(config, body, batch, size):
    """(inputs, targets) of the example schema's shapes; every has_* flag 1 (full supervision,
    so every loss term is computed). Values are plausible (a body ~5 m in front of the camera)
    so no loss term saturates or turns non-finite."""
    import numpy as np
    import tensorflow as tf
    from data_pipelines import schema
    from pose_era import geometry

    rng = np.random.default_rng(0)
    f = float(geometry.default_focal(size, size))
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], np.float32)
    shapes = schema.shapes(schema.LabelSizes.from_body_model(body), size)
    near = lambda shape: (rng.normal(0, 0.3, shape) + [0, 0, 5]).astype(np.float32)
    values = {
        "image": rng.uniform(0, 1, (batch, *shapes["image"])).astype(np.float32),
        "K": np.tile(K, (batch, 1, 1)),
        "kp2d": np.concatenate([rng.uniform(0, size, (batch, 17, 2)),
                                np.ones((batch, 17, 1))], -1).astype(np.float32),
        "j3d": near((batch, 17, 3)), "markers": near((batch, *shapes["markers"])),
        "betas": rng.normal(0, 0.5, (batch, *shapes["betas"])).astype(np.float32),
        "pose": rng.normal(0, 0.2, (batch, *shapes["pose"])).astype(np.float32),
        "transl": np.tile(np.float32([0, 0, 5]), (batch, 1)),
        "has_j3d": np.ones(batch, np.float32), "has_markers": np.ones(batch, np.float32),
        "has_params": np.ones(batch, np.float32),
        "imgname": np.array([b"bench"] * batch),
    }
    values = {k: tf.constant(v) for k, v in values.items()}
    inputs = {k: values.pop(k) for k in ("image", "K")}
    return inputs, values


class Bench:
    """One model of one config: the driver's train step and a graph-mode inference call."""

    def __init__(self, name, activation, size, batch, workdir):
        import tensorflow as tf
        from training import config as config_lib
        from training.driver import Trainer

        config = config_lib.apply_overrides(config_lib.load_config(name), [
            f"model.activation={activation}", f"data.image_size={size}",
            f"train.batch_size={batch}", "train.jit_compile=false"])
        self.trainer = Trainer(config, workdir)
        self.model = self.trainer.model
        inputs, targets = random_batch(config, self.trainer.task.body, batch, size)
        self.iterator = iter(tf.data.Dataset.from_tensors((inputs, targets)).repeat())
        self.inputs = inputs
        self.infer_fn = tf.function(lambda x: self.model(x, training=False))
        self.era_layers = sum(1 for layer in self.model._flatten_layers()
                              if type(layer).__name__ == "ERA")

    def train(self):
        loss, _ = self.trainer._train_step(self.iterator)  # the driver's compiled step
        return float(loss)

    def infer(self):
        return float(self.infer_fn(self.inputs)["markers"][0, 0, 0])


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_config(name, size, batch, repeats):
    """{variant: {"train": [s], "infer": [s], ...}} with interleaved repeats."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        benches = {v: Bench(name, v, size, batch, os.path.join(tmp, v)) for v in VARIANTS}
        for v, b in benches.items():  # trace both graphs before any timing
            start = time.perf_counter()
            loss = b.train()
            b.infer()
            out[v] = {"train": [], "infer": [], "warmup_s": time.perf_counter() - start,
                      "loss": loss, "params": b.model.count_params(),
                      "era_layers": b.era_layers}
        for _ in range(repeats):
            for kind in ("train", "infer"):
                for v, b in benches.items():
                    out[v][kind].append(timed(getattr(b, kind)))
    return out


def table(results, batch, size):
    rows = ["| config | params (ERA model) | train images/s (ERA) | train images/s (GELU) | "
            "inference ms/image (ERA) | inference ms/image (GELU) | ERA/GELU train step |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        med = {v: {k: statistics.median(r[v][k]) for k in ("train", "infer")} for v in VARIANTS}
        rows.append(
            f"| {name} | {r['era']['params'] / 1e6:.2f}M | "
            f"{batch / med['era']['train']:.2f} | {batch / med['gelu']['train']:.2f} | "
            f"{1000 * med['era']['infer'] / batch:.0f} | {1000 * med['gelu']['infer'] / batch:.0f} "
            f"| {med['era']['train'] / med['gelu']['train']:.3f} |")
    return "\n".join(rows)


def main(argv=None):
    args = parse_args(argv)
    if args.era_path == "plain":
        os.environ["POSE_ERA_ERA_PATH"] = "plain"
    import tensorflow as tf
    from pose_era.era import kernel

    tf.get_logger().setLevel("ERROR")
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python tools/bench_train.py", shlex.join(given)]).strip()
    before = io.machine_line()
    fused = kernel.load() is not None and args.era_path == "auto"
    results = {}
    started = time.time()
    for name in args.configs:
        results[name] = bench_config(name, args.image_size, args.batch, args.repeats)
        r = results[name]
        print(f"{name}: ERA train {[round(t, 2) for t in r['era']['train']]} s, GELU train "
              f"{[round(t, 2) for t in r['gelu']['train']]} s, ERA infer "
              f"{[round(t, 3) for t in r['era']['infer']]} s, GELU infer "
              f"{[round(t, 3) for t in r['gelu']['infer']]} s, tracing "
              f"{r['era']['warmup_s']:.0f}/{r['gelu']['warmup_s']:.0f} s, "
              f"{r['era']['era_layers']} ERA layers", file=sys.stderr, flush=True)
    print(f"\nCommand: `{command}`  ")
    print(f"Machine: {before} at start; "
          f"{os.getloadavg()[0]:.2f} (1 min) at the end; TensorFlow {tf.__version__}  ")
    print(f"Settings: {args.image_size}x{args.image_size}, batch {args.batch}, median of "
          f"{args.repeats} interleaved repeats; train step = the driver's (graph mode, no XLA); "
          f"ERA path: {'fused CPU kernel' if fused else 'plain TF ops'}; "
          f"total {time.time() - started:.0f} s\n")
    print(table(results, args.batch, args.image_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
