"""How much of a body's pose its 2D keypoints determine: the head's lifter on true keypoints.

Usage: python tools/lifting_floor.py [--data DIR] [--noise 0,3.5] [--steps 3000] [--hidden 512]

The model's lifter (models/lifter.py: a residual MLP from the COCO-17 keypoints' normalised
viewing rays to a correction of the upright mean body's markers) is trained alone, with no image,
on the true keypoints (kp2d) of a synthetic training set, with Gaussian pixel noise of each
--noise standard deviation added per coordinate, and scored on the set's last 2,048 training
examples (held out): mean marker distance after centring and after a Procrustes alignment, in mm,
beside the mean body's. Why: it bounds what lifting the dense aid's keypoints (~3.5 px) can give
the head's first estimate, and it tells 2D error from depth ambiguity in the head's markers.
Batch 256, Adam 1e-3 with a cosine schedule; ~4 min per noise level on 2 cores.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HELD_OUT = 2048
BATCH = 256


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="cache/synth/40960_1024_1_160",
                   help="synthetic dataset folder (tools/make_synth.py; default: the long run's)")
    p.add_argument("--noise", default="0,3.5", help="comma-separated pixel noise levels")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--hidden", type=int, default=512)
    args = p.parse_args(argv)
    try:
        args.noise = [float(n) for n in args.noise.split(",") if n]
    except ValueError:
        p.error(f"--noise {args.noise!r}: give numbers separated by commas, e.g. 0,3.5")
    if args.steps < 1 or args.hidden < 1 or any(n < 0 for n in args.noise):
        p.error("--steps and --hidden must be >= 1, noise levels >= 0")
    return args


def read_labels(directory):
    """(K (N,3,3), kp2d (N,17,3), markers (N,M,3), image size) of a synthetic set's train split."""
    import numpy as np
    import tensorflow as tf
    from data_pipelines.synthetic import records, writer

    def parse(serialized):
        f = records.parse_labels(serialized, ("K", "kp2d", "markers"))
        return f["K"], f["kp2d"], f["markers"]
    parts = [[], [], []]
    for batch in tf.data.TFRecordDataset(records.train_files(directory)).map(parse).batch(4096):
        for part, value in zip(parts, batch):
            part.append(value.numpy())
    K, kp2d, markers = (np.concatenate(p) for p in parts)
    n = len(K)
    return (K.reshape(n, 3, 3), kp2d.reshape(n, 17, 3), markers.reshape(n, -1, 3),
            int(writer.read_meta(directory)["image_size"]))


def floor(K, kp2d, markers, size, rest, noise, steps, hidden, held_out=HELD_OUT, seed=0):
    """dict(centred, procrustes, mean_body) mean marker errors (m) on the last `held_out`
    examples: the lifted markers after centring and after Procrustes, and the mean body's after
    Procrustes."""
    import numpy as np
    import tensorflow as tf
    from models.lifter import KeypointLifter
    from pose_era import geometry

    rng = np.random.default_rng(seed)
    centred = markers - markers.mean(1, keepdims=True)
    base = tf.constant(rest - rest.mean(0), tf.float32)

    def geometry_of(index):
        """KeypointTokens' last four columns: (u, v) in map units, and a spread of the noise's
        size (at least a pixel, as the aid's heatmaps give)."""
        uv = kp2d[index, :, :2] + rng.normal(0.0, noise, (len(index), 17, 2))
        spread = np.full((len(index), 17, 2), max(noise, 1.0) / size)
        return np.concatenate([uv / size - 0.5, spread], -1).astype(np.float32)

    lifter = KeypointLifter(markers.shape[1], image_size=size, hidden=hidden)
    optimizer = tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(1e-3, steps))

    @tf.function(autograph=False)   # plain graph code; autograph only warns about closures
    def step(geom, K_batch, target):
        with tf.GradientTape() as tape:
            pred = base + lifter([geom, K_batch])
            pred -= tf.reduce_mean(pred, axis=1, keepdims=True)
            loss = tf.reduce_mean(tf.norm(pred - target, axis=-1))
        variables = lifter.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    train = np.arange(len(K) - held_out)
    for _ in range(steps):
        index = rng.choice(train, BATCH)
        step(geometry_of(index), K[index], centred[index])
    test = np.arange(len(K) - held_out, len(K))
    pred = (base + lifter([geometry_of(test), K[test]])).numpy()
    pred -= pred.mean(1, keepdims=True)
    target = centred[test]
    aligned = geometry.procrustes_align(tf.constant(pred, tf.float64),
                                        tf.constant(target, tf.float64)).numpy()
    mean_body = geometry.procrustes_align(
        tf.constant(np.broadcast_to(base.numpy(), target.shape), tf.float64),
        tf.constant(target, tf.float64)).numpy()
    dist = lambda a: float(np.linalg.norm(a - target, axis=-1).mean())  # noqa: E731
    return {"centred": dist(pred), "procrustes": dist(aligned), "mean_body": dist(mean_body)}


def main(argv=None):
    args = parse_args(argv)
    from models.mean_body import mean_body
    from pose_era import io
    from pose_era.body import BodyModel, default_body_model_path

    if not Path(args.data, "meta.json").is_file():
        print(f"error: {args.data} is not a synthetic dataset folder; make one with "
              "tools/make_synth.py", file=sys.stderr)
        return 2
    started = time.time()
    K, kp2d, markers, size = read_labels(args.data)
    rest = mean_body(BodyModel.load(default_body_model_path(num_markers=markers.shape[1])))
    print(f"{len(K)} bodies of {args.data} ({len(K) - HELD_OUT} to train, {HELD_OUT} held out), "
          f"{size} px; {io.machine_line()}")
    print("| keypoint noise (px per coordinate) | centred mm | Procrustes mm | mean body, "
          "Procrustes mm |\n|---|---|---|---|")
    for noise in args.noise:
        r = floor(K, kp2d, markers, size, rest["markers"], noise, args.steps, args.hidden)
        print(f"| {noise:g} | {1000 * r['centred']:.1f} | {1000 * r['procrustes']:.1f} | "
              f"{1000 * r['mean_body']:.1f} |", flush=True)
    print(f"\n{args.steps} steps x {BATCH}, lifter width {args.hidden}; "
          f"{time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
