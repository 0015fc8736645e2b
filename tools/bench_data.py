"""Input-pipeline throughput (images/s at 480x480) against what a training step consumes.

    python tools/bench_data.py [--images 64] [--batch 32] [--batches 8] [--size 480]
                               [--step mixer_64] [--step-batch 8] [--step-steps 3]

Writes small datasets in the real layouts into a temporary folder (Human3.6M: SPIN npz +
1000x1002 JPEG frames; COCO: json + 640x480 JPEGs; synthetic: TFRecords of 480x480 JPEGs,
written with the synthetic dataset's own record format), then times
data_pipelines.pipeline.build_dataset(config, "train") for each, with and without augmentation,
and prints a table. The files are small enough to stay in the page cache, so the figures are
the CPU cost of decode + crop + augment (not disk speed). With --step CONFIG it also times the
pose model's training step (forward, loss, backward, Adam) of that named config on one batch of
synthetic examples, so the two can be compared: the pipeline keeps up when its images/s is at
least the step's.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data_pipelines import pipeline, schema  # noqa: E402
from data_pipelines.synthetic import records  # noqa: E402


def _photo(rng, width, height):
    """A JPEG with photo-like statistics: smooth colour fields plus sensor-like noise."""
    base = cv2.resize(rng.uniform(0, 255, (9, 9, 3)).astype(np.float32), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    img = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _person(rng, width, height):
    """A random box (centre, SPIN scale) and COCO-17 keypoints inside it."""
    side = rng.uniform(0.4, 0.8) * min(width, height)
    centre = rng.uniform([side / 2, side / 2], [width - side / 2, height - side / 2])
    kp = centre + rng.uniform(-side / 2, side / 2, (17, 2))
    return centre, side / 200.0, kp


def make_h36m(directory, n, rng):
    names, centres, scales, parts = [], [], [], []
    for i in range(n):
        name = f"images/S1_Walking_1.54138969_{i:06d}.jpg"
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_photo(rng, 1000, 1002))
        centre, scale, kp = _person(rng, 1000, 1002)
        part = np.zeros((24, 3))
        part[:17, :2], part[:17, 2] = kp, 1.0
        names.append(name), centres.append(centre), scales.append(scale), parts.append(part)
    S = np.concatenate([rng.normal(0, 0.3, (n, 24, 3)), np.ones((n, 24, 1))], axis=-1)
    np.savez(directory / "h36m_train.npz", imgname=np.array(names), center=np.array(centres),
             scale=np.array(scales), part=np.array(parts), S=S)


def make_coco(directory, n, rng):
    images, anns = [], []
    (directory / "train2017").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (directory / "train2017" / f"{i:012d}.jpg").write_bytes(_photo(rng, 640, 480))
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480})
        centre, scale, kp = _person(rng, 640, 480)
        side = 200 * scale / 1.2
        anns.append({"id": i, "image_id": i, "iscrowd": 0, "category_id": 1,
                     "bbox": [centre[0] - side / 2, centre[1] - side / 2, side, side],
                     "keypoints": np.concatenate([kp, np.full((17, 1), 2)], 1).flatten().tolist()})
    (directory / "annotations").mkdir(exist_ok=True)
    (directory / "annotations" / "person_keypoints_train2017.json").write_text(
        json.dumps({"images": images, "annotations": anns}))


def make_synthetic(directory, n, rng, size, sizes):
    K = np.array([[size * 1.2, 0, size / 2], [0, size * 1.2, size / 2], [0, 0, 1]])
    examples = [dict(jpeg=_photo(rng, size, size), imgname=f"images/train_{i:07d}.jpg", K=K,
                     kp2d=np.concatenate([rng.uniform(0, size, (17, 2)), np.full((17, 1), 2)], 1),
                     j3d=rng.normal(size=(17, 3)), markers=rng.normal(size=(sizes.num_markers, 3)),
                     betas=rng.normal(size=sizes.num_betas),
                     pose=rng.normal(size=(sizes.num_joints, 3)), transl=rng.normal(size=3))
                for i in range(n)]
    directory.mkdir(parents=True, exist_ok=True)
    half = n // 2
    records.write_shard(directory / records.shard_name("train", 0, 2), examples[:half])
    records.write_shard(directory / records.shard_name("train", 1, 2), examples[half:])
    (directory / "meta.json").write_text(json.dumps({"train": n, "test": 0}))


def _config(name, directory, size, batch, augment):
    return ml_collections.ConfigDict({
        "data": {"name": name, "dir": str(directory), "image_size": size, "augment": augment,
                 "shuffle_buffer": 256},
        "train": {"batch_size": batch, "seed": 0}})


def time_pipeline(config, batches):
    """images/s of the train pipeline after two warm-up batches."""
    it = iter(pipeline.build_dataset(config, "train"))
    for _ in range(2):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
    batch["image"].numpy()
    return batches * int(config.train.batch_size) / (time.perf_counter() - start)


def time_step(config_name, synth_dir, size, batch, steps):
    """images/s of the pose model's training step (config `config_name`) on one batch."""
    from training import tasks
    from training.config import load_config
    config = load_config(config_name)
    with config.unlocked():
        config.data.name, config.data.dir = "synthetic", str(synth_dir)
        config.data.image_size, config.data.augment = size, False
        config.train.batch_size = batch
    task = tasks.get(config.task)(config)
    model = task.build_model()
    example = next(iter(pipeline.build_dataset(config, "train")))
    inputs = {k: example[k] for k in ("image", "K")}
    targets = {k: v for k, v in example.items() if k not in inputs}
    optimizer = tf.keras.optimizers.Adam(1e-4)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss, _ = task.compute_loss(model, inputs, targets, training=True)
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step().numpy()
    start = time.perf_counter()
    for _ in range(steps):
        step().numpy()
    return steps * batch / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64, help="images per dataset")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=8, help="timed batches per row")
    parser.add_argument("--size", type=int, default=480, help="output crop size")
    parser.add_argument("--step", help="also time this pose config's training step")
    parser.add_argument("--step-batch", type=int, default=8)
    parser.add_argument("--step-steps", type=int, default=3)
    args = parser.parse_args(argv)
    if args.images < 2 or args.batch < 1 or args.batches < 1:
        print("bench_data: --images must be >= 2, --batch and --batches >= 1", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    sizes = schema.LabelSizes()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_h36m(tmp / "h36m", args.images, rng)
        make_coco(tmp / "coco", args.images, rng)
        make_synthetic(tmp / "synth", args.images, rng, args.size, sizes)
        rows = []
        for name, source in (("synthetic", "TFRecord, 480x480 JPEG"),
                             ("h36m", "SPIN npz, 1000x1002 JPEG"),
                             ("coco", "json, 640x480 JPEG")):
            for augment in (False, True):
                config = _config(name, tmp / ("synth" if name == "synthetic" else name),
                                 args.size, args.batch, augment)
                rows.append((name, source, "yes" if augment else "no",
                             time_pipeline(config, args.batches)))
        print(f"tf.data train pipeline, {args.size}x{args.size} crops, batch {args.batch}, "
              f"{args.batches} batches after 2 warm-up, {os.cpu_count()} CPU cores")
        print(f"| {'source':<10} | {'input':<25} | augment | images/s |")
        print(f"|{'-' * 12}|{'-' * 27}|---------|----------|")
        for name, source, aug, ips in rows:
            print(f"| {name:<10} | {source:<25} | {aug:<7} | {ips:8.1f} |")
        if args.step:
            ips = time_step(args.step, tmp / "synth", args.size, args.step_batch, args.step_steps)
            print(f"training step of {args.step} (batch {args.step_batch}, {args.size}x{args.size},"
                  f" forward + loss + backward + Adam): {ips:.1f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
