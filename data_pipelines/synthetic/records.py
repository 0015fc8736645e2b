"""The synthetic dataset's TFRecord format: the one place that writes and reads it.

One tf.train.Example per image:
  image    bytes     JPEG, RGB, square (480 px by default)
  imgname  bytes     "images/<split>_<index>.jpg" (a file only for the test split)
  K        float 9   crop intrinsics, row-major
  kp2d     float 51  COCO-17 (u, v, code), code 0 outside the image, 1 occluded, 2 visible
  j3d      float 51  H36M-17 joints, camera frame, metres
  markers  float 3K  surface markers, camera frame, metres
  betas    float S   shape coefficients of the body-model file
  pose     float 3J  axis-angle per joint, root (global orientation) first
  transl   float 3   body-model translation
`parse_example` turns one record into the project's example dict (docs/contracts.md).
"""
import struct
from pathlib import Path

import numpy as np
import tensorflow as tf

TRAIN_PATTERN = "train-*.tfrecord"
TEST_PATTERN = "test-*.tfrecord"
OUTSIDE = 0.0  # kp2d codes: 0 outside the image, 1 occluded, 2 visible
_FLOATS = ("K", "kp2d", "j3d", "markers", "betas", "pose", "transl")


def shard_name(split, shard, num_shards):
    return f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord"


def serialize(example):
    """Example dict (scene.SceneMaker.make) -> serialized tf.train.Example bytes."""
    def floats(x):
        return tf.train.Feature(float_list=tf.train.FloatList(
            value=np.asarray(x, np.float32).reshape(-1)))

    def data(b):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[b]))

    feature = {"image": data(example["jpeg"]), "imgname": data(example["imgname"].encode())}
    feature.update({k: floats(example[k]) for k in _FLOATS})
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)  # map keys sorted: same bytes


def write_shard(path, examples):
    """Write serialized examples to one TFRecord file."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for ex in examples:
            writer.write(serialize(ex))


_SPEC = {"image": tf.io.FixedLenFeature([], tf.string),
         "imgname": tf.io.FixedLenFeature([], tf.string),
         "K": tf.io.FixedLenFeature([9], tf.float32),
         "kp2d": tf.io.FixedLenFeature([51], tf.float32),
         "j3d": tf.io.FixedLenFeature([51], tf.float32),
         "markers": tf.io.VarLenFeature(tf.float32),
         "betas": tf.io.VarLenFeature(tf.float32),
         "pose": tf.io.VarLenFeature(tf.float32),
         "transl": tf.io.FixedLenFeature([3], tf.float32)}


def parse_example(serialized):
    """Serialized record -> example dict of the contract: image float32 (S,S,3) in [0,1], K,
    kp2d (17,3) with visibility 1 where the keypoint is labelled (inside the image, occluded or
    not, as COCO's v > 0 and the COCO reader) else 0, j3d, markers (K,3), betas (S,), pose (J,3), transl, has_* = 1, imgname.

    markers/betas/pose have a dynamic first dimension (the body model's sizes);
    data_pipelines.schema.complete fixes them."""
    f = tf.io.parse_single_example(serialized, _SPEC)
    image = tf.io.decode_jpeg(f["image"], channels=3)
    kp = tf.reshape(f["kp2d"], [17, 3])
    labelled = tf.cast(kp[:, 2:] > OUTSIDE, tf.float32)
    one = tf.constant(1.0)
    return {
        "image": tf.image.convert_image_dtype(image, tf.float32),
        "K": tf.reshape(f["K"], [3, 3]),
        "kp2d": tf.concat([kp[:, :2], labelled], axis=1),
        "j3d": tf.reshape(f["j3d"], [17, 3]), "has_j3d": one,
        "markers": tf.reshape(tf.sparse.to_dense(f["markers"]), [-1, 3]), "has_markers": one,
        "betas": tf.sparse.to_dense(f["betas"]),
        "pose": tf.reshape(tf.sparse.to_dense(f["pose"]), [-1, 3]),
        "transl": f["transl"], "has_params": one,
        "imgname": f["imgname"],
    }


def parse_labels(serialized, keys):
    """The named features of a record as stored (flat float32; variable-length ones dense),
    without decoding its image: for tools that read only labels (tools/lifting_floor.py)."""
    f = tf.io.parse_single_example(serialized, {k: _SPEC[k] for k in keys})
    return {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v
            for k, v in f.items()}


def _files(directory, pattern, split):
    directory = Path(directory)
    files = sorted(str(p) for p in directory.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"no {split} TFRecords ({pattern}) in {directory}; make the dataset with: "
            f"python tools/make_synth.py --out {directory} --train N --test M --seed S")
    return files


def train_files(directory):
    """Sorted paths of the train shards of a synthetic dataset folder."""
    return _files(directory, TRAIN_PATTERN, "train")


def test_files(directory):
    """Sorted paths of the test shards (the same examples as synth_test.npz)."""
    return _files(directory, TEST_PATTERN, "test")


def check_files(files):
    """ValueError naming the first truncated TFRecord file (read error mid-training does not
    name it). Walks the record headers only (8-byte length, 4-byte CRC, payload, 4-byte CRC),
    seeking over the payloads, so it costs a few reads per record, not a pass over the data."""
    for path in files:
        size = Path(path).stat().st_size
        offset, count = 0, 0
        with open(path, "rb") as f:
            while offset < size:
                header = f.read(12)
                end = offset + 12 + (struct.unpack("<Q", header[:8])[0] if len(header) == 12
                                     else 0) + 4
                if len(header) < 12 or end > size:
                    raise ValueError(
                        f"{path} is truncated (record {count} at byte {offset} of {size}); "
                        "make the dataset again (delete its folder and rerun, or "
                        "python tools/make_synth.py)")
                f.seek(end)
                offset, count = end, count + 1
