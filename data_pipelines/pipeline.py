"""config -> tf.data.Dataset of batched schema examples, for one replica of a tf.distribute run.

`build_dataset(config, split, input_context=None, body_model=None, keypoints=None)`:
  split "train": shard (input_context) -> shuffle -> read / parse (bad images skipped and
    counted) -> repeat -> mix sources -> augment -> [keypoints: a keypoint-fed model's input,
    kp2d corrupted by a data_pipelines.keypoint_noise.KeypointNoise] -> batch (per-replica
    size, drop remainder) [-> some images swapped within it, KeypointNoise.image_swap]
    -> prefetch; infinite.
  split "test": the first named source, file order, not augmented, batched (eval.batch_size),
    remainder kept; finite. Sharded too when an input_context is given.
  split "val": the first data.val_size examples of "test" (all when 0 or unset), for the
    evaluations during training.
Sources (config.data.name, several joined by "+" for weak supervision, e.g. "synthetic+coco",
drawn with config.data.mix_weights, equal by default):
  synthetic  train: TFRecord shards of data_pipelines.synthetic; test: DIR/synth_test.npz
             read by the Human3.6M reader (the evaluation's code path); each split built on
             first use (evaluation renders only the test split).
  h36m       SPIN npz files in data.dir (h36m_train.npz, h36m_valid_protocol{1,2}.npz,
             data.protocol, default 2) with the images beside them.
  coco       data.coco_json + data.coco_images, or the COCO 2017 layout under data.dir.
Sharding happens on the cheap record indices (or TFRecord files) before any image is read, so
each worker reads only its share; shuffling is of indices too (a full shuffle of 312k Human3.6M
records costs 2.5 MB), and all parallelism is tf.data.AUTOTUNE.
The body model (when given) fixes the label sizes and supplies the flip permutations and the
rest root joint augmentation needs (see data_pipelines.augment); without it the sizes are
`sizes` (default: the Anny file's) and flipped/rotated examples lose has_params. Every
config.data key read here is declared in configs/common_pose.py (`data_section`).
"""
import os
from pathlib import Path

import ml_collections
import tensorflow as tf

from data_pipelines import augment as augment_lib
from data_pipelines import coco, h36m, keypoint_noise, schema

SOURCES = ("synthetic", "h36m", "coco")
SPLITS = ("train", "test", "val")


def _data(config):
    return config.data if isinstance(config.data, ml_collections.ConfigDict) else \
        ml_collections.ConfigDict(config.data)


def source_names(config):
    """The source names of config.data.name ('a+b' -> ['a', 'b']), validated."""
    names = [n.strip() for n in str(_data(config).name).split("+") if n.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if not names or unknown:
        raise ValueError(f"data.name={_data(config).name!r}: unknown source(s) "
                         f"{', '.join(unknown) or '(none)'}; choose from {', '.join(SOURCES)}, "
                         "joined by '+' for a mixture")
    return names


def synthetic_dir(config):
    """data.dir, or cache/synth/<train>_<test>_<seed>_<image size>[_yaw<max yaw>] under
    $POSE_ERA_CACHE (default: the repository's cache/)."""
    data = _data(config)
    if data.dir:
        return str(data.dir)
    cache = os.environ.get("POSE_ERA_CACHE") or str(Path(__file__).resolve().parents[1] / "cache")
    name = f"{data.synth_train}_{data.synth_test}_{data.synth_seed}_{data.image_size}"
    max_yaw = float(data.synth_max_yaw)
    if max_yaw != 180.0:
        name += f"_yaw{max_yaw:g}"
    return os.path.join(cache, "synth", name)


def _synthetic_folder(config, split):
    """The synthetic dataset folder with `split` ("train" | "test") in it: an existing data.dir
    that has the split is read as it is; otherwise the split is made there (or in the default
    cache folder) on first use, and only that split, so evaluating renders no training images
    (a folder our writer made with one split gets the other added beside it, e.g. a training run
    that evaluates)."""
    data = _data(config)
    directory = synthetic_dir(config)
    body = config.body.path or None
    if data.dir and os.path.isdir(directory):
        from data_pipelines.synthetic.writer import check_body_model, made_splits, read_meta
        check_body_model(directory, body)  # labels sized for another body model fail late
        if split in made_splits(read_meta(directory)):
            return directory
    from data_pipelines.synthetic import ensure_synthetic_dataset
    return str(ensure_synthetic_dataset(directory, int(data.synth_train), int(data.synth_test),
                                        int(data.synth_seed), body_path=body,
                                        image_size=int(data.image_size),
                                        max_yaw=float(data.synth_max_yaw), splits=(split,)))


def _file_source(config, name, split, sizes):
    """The FileSource of a file-based split (h36m, coco, the synthetic test npz)."""
    data = _data(config)
    size = int(data.image_size)
    if name == "synthetic":
        directory = _synthetic_folder(config, "test")
        return h36m.source(os.path.join(directory, "synth_test.npz"), directory, size, sizes,
                           name="synthetic_test")
    if name == "h36m":
        if not data.dir:
            raise ValueError(f"data.dir is empty; set it to the folder with {h36m.WHERE}")
        path = h36m.split_path(data.dir, split, data.protocol)
        return h36m.source(path, None, size, sizes, data.h36m_intrinsics)
    if data.coco_json:
        json_path, images = data.coco_json, data.coco_images or os.path.dirname(data.coco_json)
    elif data.dir:
        json_path, images = coco.split_paths(data.dir, split)
    else:
        raise ValueError(f"set data.coco_json and data.coco_images (or data.dir) to {coco.WHERE}")
    return coco.source(json_path, images, size, sizes, int(data.coco_min_keypoints))


def _shard_range(n, input_context):
    """Indices 0..n-1, this pipeline's share of them, and its count."""
    ds = tf.data.Dataset.range(n)
    if input_context is None or input_context.num_input_pipelines == 1:
        return ds, n
    k, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    return ds.shard(k, i), len(range(i, n, k))


def _file_examples(src, input_context, shuffle_seed, limit=None):
    """A FileSource's examples for this pipeline: indices sharded, shuffled if a seed is given;
    `limit`: only the first that many samples."""
    n = len(src) if not limit else min(int(limit), len(src))
    indices, count = _shard_range(n, input_context)
    if count == 0:
        raise ValueError(f"{src.name}: {len(src)} samples cannot feed "
                         f"{input_context.num_input_pipelines} input pipelines")
    if shuffle_seed is not None:
        indices = indices.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    return src.examples(src.records(indices), count)


def _synthetic_train(config, input_context, seed, sizes):
    from data_pipelines.synthetic import records
    data = _data(config)
    files = records.train_files(_synthetic_folder(config, "train"))
    records.check_files(files)
    ds = tf.data.Dataset.from_tensor_slices(files)
    k = input_context.num_input_pipelines if input_context else 1
    by_file = k > 1 and len(files) >= k
    if by_file:
        ds = ds.shard(k, input_context.input_pipeline_id)
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                       num_parallel_calls=tf.data.AUTOTUNE)
    if k > 1 and not by_file:
        ds = ds.shard(k, input_context.input_pipeline_id)
    ds = ds.shuffle(int(data.shuffle_buffer), seed=seed,
                    reshuffle_each_iteration=True)
    size = int(data.image_size)
    # No ignore_errors: these files are written atomically by our own writer, so an error here
    # (a label size that does not match the body model, a damaged file) must stop the run.
    return ds.map(lambda s: schema.complete(records.parse_example(s), sizes, size),
                  num_parallel_calls=tf.data.AUTOTUNE)


def num_examples(config, split):
    """Examples in one pass over `split` of the first named source (a mixture's epoch is
    counted in its first, primary, source); reads the source's index (npz / json / meta)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    data = _data(config)
    name = source_names(config)[0]
    if name == "synthetic" and split == "train":
        from data_pipelines.synthetic.writer import read_meta
        return int(read_meta(_synthetic_folder(config, "train"))["train"])
    n = len(_file_source(config, name, "train" if split == "train" else "test",
                         schema.LabelSizes()))
    return min(n, int(data.val_size)) if split == "val" and data.val_size else n


def augment_config(config):
    """data.augment: True/False, or a section with AugmentConfig fields (+ enabled)."""
    value = _data(config).augment
    if isinstance(value, bool):
        return augment_lib.AugmentConfig() if value else None
    section = dict(value)
    if not section.pop("enabled", True):
        return None
    return augment_lib.AugmentConfig.from_config(section)


def build_dataset(config, split, input_context=None, body_model=None, sizes=None,
                  keypoints=None):
    """The batched tf.data.Dataset of `split` ("train" | "test" | "val") for one input
    pipeline (see the module docstring). `sizes`: the label sizes when no body model is given.
    `keypoints`: a keypoint_noise.KeypointNoise: training examples get `keypoints`, their
    augmented kp2d corrupted by it (the evaluation's come from eval/keypoint_input.py)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    data = _data(config)
    if body_model is not None:
        sizes = schema.LabelSizes.from_body_model(body_model)
    sizes = sizes or schema.LabelSizes()
    names = source_names(config)
    seed = int(config.train.seed if data.seed is None else data.seed)
    if input_context is not None:
        seed += 1000 * input_context.input_pipeline_id
    global_batch = int(config.train.batch_size if split == "train" else config.eval.batch_size)
    batch = (input_context.get_per_replica_batch_size(global_batch) if input_context
             else global_batch)

    if split != "train":
        src = _file_source(config, names[0], "test", sizes)
        limit = data.val_size if split == "val" else None
        ds = _file_examples(src, input_context, None, limit)
        return ds.batch(batch).prefetch(tf.data.AUTOTUNE)

    weights = [float(w) for w in data.mix_weights] or [1.0] * len(names)
    if len(weights) != len(names):
        raise ValueError(f"data.mix_weights has {len(weights)} entries for {len(names)} "
                         f"sources ({'+'.join(names)})")
    parts = []
    for name in names:
        if name == "synthetic":
            ds = _synthetic_train(config, input_context, seed, sizes)
        else:
            ds = _file_examples(_file_source(config, name, split, sizes), input_context, seed)
        parts.append(ds.repeat())
    if len(parts) == 1:
        ds = parts[0]
    else:
        ds = tf.data.Dataset.sample_from_datasets(parts, weights, seed=seed)
    aug = augment_config(config)
    if aug is not None:
        symmetry = (augment_lib.Symmetry.from_body_model(body_model) if body_model is not None
                    else augment_lib.Symmetry())
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda ex, s: augment_lib.augment(ex, s, aug, symmetry),
            num_parallel_calls=tf.data.AUTOTUNE)
    if keypoints is not None:
        size = int(data.image_size)
        seeds = tf.data.Dataset.random(seed=seed + 1).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda ex, s: keypoint_noise.add_keypoints(ex, s, keypoints, size),
            num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch, drop_remainder=True)
    if keypoints is not None and keypoints.image_swap > 0:
        seeds = tf.data.Dataset.random(seed=seed + 2).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda b, s: keypoint_noise.swap_images(b, s, keypoints))
    return ds.prefetch(tf.data.AUTOTUNE)
