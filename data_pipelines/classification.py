"""Image-classification data for the sanity benchmarks, as tf.data pipelines of (image, label).

Sources (config.data.name):
- `digits` (the embedded default, always offline): scikit-learn's bundled handwritten digits,
  1,797 real 8x8 images, upscaled bilinearly to data.image_size, with a fixed split: a NumPy
  RandomState(0) permutation, the first DIGITS_TEST examples are the test set.
- `mnist`, `cifar10`: the files keras.datasets caches, read from the Keras cache only
  (`$KERAS_HOME/datasets` or `~/.keras/datasets`). keras.datasets.*.load_data() itself is not
  called because it downloads whenever the file is missing or its hash differs; a missing file
  here is one clear line saying which file goes where.
- `imagenet`: a user's directory, either `train/<class>/*.JPEG` + `val/<class>/*.JPEG` folders or
  TFRecord shards `train-*` / `validation-*` in the ImageNet TFRecord format (`image/encoded`,
  `image/class/label`, 1-based labels as written by TensorFlow's build_imagenet_data.py).

Images are float32 in [0, 1], labels int32. CIFAR-10 training adds the supplement's augmentation:
random shifts of up to 6 px (zero padding, random crop) and horizontal flips; ImageNet training
uses the usual random-resized crop and flip, evaluation a centre crop. Random augmentation draws
its seeds from tf.data.Dataset.random(train.seed), so a run is reproducible.
"""
import functools
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import tensorflow as tf

# native image size, channels, classes
SPECS = {"digits": (8, 1, 10), "mnist": (28, 1, 10), "cifar10": (32, 3, 10),
         "imagenet": (224, 3, 1000)}
DIGITS_TEST = 450
CIFAR_SHIFT = 6
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
IMAGENET_CROP_FRACTION = 0.875


def _check_name(name):
    if name not in SPECS:
        raise ValueError(f"unknown classification dataset '{name}'; choose one of: "
                         f"{', '.join(SPECS)}")


def image_shape(config):
    """(image_size, image_size, channels) of the images the model sees."""
    _check_name(config.data.name)
    size = config.data.image_size
    return (size, size, SPECS[config.data.name][1])


def num_classes(config):
    _check_name(config.data.name)
    return SPECS[config.data.name][2]


def keras_datasets_dir():
    """The Keras dataset cache, resolved now (Keras itself reads KERAS_HOME at import)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


# ---------------------------------------------------------------- in-memory sources

@functools.lru_cache(maxsize=4)
def load_digits(image_size=28):
    """((x_train, y_train), (x_test, y_test)): float32 (N,S,S,1) in [0,1], int32 labels."""
    from sklearn.datasets import load_digits as sk_load_digits
    bunch = sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., None]
    images = tf.image.resize(images, (image_size, image_size), method="bilinear").numpy()
    images = np.clip(images, 0.0, 1.0)
    labels = bunch.target.astype(np.int32)
    order = np.random.RandomState(0).permutation(len(labels))
    test, train = order[:DIGITS_TEST], order[DIGITS_TEST:]
    return (images[train], labels[train]), (images[test], labels[test])


def load_mnist():
    """MNIST from the Keras cache: uint8 (N,28,28,1) images, int32 labels."""
    path = keras_datasets_dir() / "mnist.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"MNIST is not in the Keras cache: put mnist.npz ({MNIST_URL}) at {path} "
            "(set KERAS_HOME to use another cache); nothing is downloaded")
    with np.load(path, allow_pickle=False) as f:
        return ((f["x_train"][..., None], f["y_train"].astype(np.int32)),
                (f["x_test"][..., None], f["y_test"].astype(np.int32)))


def _cifar_batches(read):
    """Joins CIFAR-10 python batches; read(name) returns a batch file's bytes."""
    def batch(name):
        d = pickle.loads(read(name), encoding="bytes")
        x = d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], np.int32)
    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    return ((np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
            batch("test_batch"))


def load_cifar10():
    """CIFAR-10 from the Keras cache: uint8 (N,32,32,3) images, int32 labels.

    Accepts the extracted `cifar-10-batches-py/` folder (where Keras 2 put it, or inside Keras 3's
    `cifar-10-batches-py-target/`) or the `cifar-10-python.tar.gz` archive itself (also under
    Keras 3's name `cifar-10-batches-py-target_archive`), read without extracting.
    """
    root = keras_datasets_dir()
    for folder in (root / "cifar-10-batches-py",
                   root / "cifar-10-batches-py-target" / "cifar-10-batches-py"):
        if (folder / "test_batch").is_file():
            return _cifar_batches(lambda name: (folder / name).read_bytes())
    for archive in (root / "cifar-10-python.tar.gz", root / "cifar-10-batches-py-target_archive"):
        if archive.is_file():
            with tarfile.open(archive, "r:gz") as tar:
                return _cifar_batches(
                    lambda name: tar.extractfile(f"cifar-10-batches-py/{name}").read())
    raise FileNotFoundError(
        f"CIFAR-10 is not in the Keras cache: put cifar-10-python.tar.gz ({CIFAR_URL}) or its "
        f"extracted cifar-10-batches-py/ folder in {root} (set KERAS_HOME to use another "
        "cache); nothing is downloaded")


def _arrays(name, image_size):
    if name == "digits":
        return load_digits(image_size)
    return load_mnist() if name == "mnist" else load_cifar10()


# ---------------------------------------------------------------- ImageNet from a directory

def _imagenet_source(config, training):
    """(tf.data.Dataset of (encoded JPEG, label), number of examples or None)."""
    root = Path(config.data.dir) if config.data.dir else None
    if root is None or not root.is_dir():
        raise FileNotFoundError(
            f"ImageNet directory {config.data.dir!r} not found: set --set data.dir=DIR to a folder "
            "with train/<class>/*.JPEG and val/<class>/*.JPEG, or TFRecord shards "
            "train-*-of-* and validation-*-of-*")
    if (root / "train").is_dir():
        classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        split = root / ("train" if training else "val")
        files, labels = [], []
        for label, name in enumerate(classes):
            found = sorted(str(p) for p in (split / name).glob("*") if p.is_file())
            files += found
            labels += [label] * len(found)
        if not files:
            raise FileNotFoundError(f"no images under {split}/<class>/: expected ImageNet folders")
        ds = tf.data.Dataset.from_tensor_slices((files, np.asarray(labels, np.int32)))
        return ds.map(lambda f, y: (tf.io.read_file(f), y)), len(files)
    shards = sorted(str(p) for p in root.glob("train-*" if training else "validation-*"))
    if not shards:
        raise FileNotFoundError(f"{root} has neither train/<class>/ folders nor TFRecord shards "
                                "train-*-of-* / validation-*-of-*")
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                "image/class/label": tf.io.FixedLenFeature([], tf.int64)}
    offset = config.data.label_offset

    def parse(record):
        ex = tf.io.parse_single_example(record, features)
        return ex["image/encoded"], tf.cast(ex["image/class/label"], tf.int32) - offset

    ds = tf.data.Dataset.from_tensor_slices(shards)
    if training:
        ds = ds.shuffle(len(shards), seed=config.train.seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True)
    return ds.map(parse), (config.data.train_size or None) if training else None


def _imagenet_train_image(encoded, seed, size):
    """Random-resized crop (area 8-100 %, aspect 3/4-4/3) and horizontal flip."""
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    shape = tf.image.extract_jpeg_shape(encoded)
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, tf.zeros([1, 0, 4]), seed=crop_seed, area_range=(0.08, 1.0),
        aspect_ratio_range=(0.75, 4 / 3), use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], extent[0], extent[1]])
    image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3)
    image = tf.image.resize(tf.image.convert_image_dtype(image, tf.float32), (size, size))
    return tf.image.stateless_random_flip_left_right(tf.clip_by_value(image, 0.0, 1.0), flip_seed)


def _imagenet_eval_image(encoded, size):
    """Resize the shorter side to size/0.875, then a centre crop of size x size."""
    image = tf.image.convert_image_dtype(tf.io.decode_jpeg(encoded, channels=3), tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / IMAGENET_CROP_FRACTION / tf.reduce_min(shape)
    image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
    image = tf.image.resize_with_crop_or_pad(image, size, size)
    return tf.clip_by_value(image, 0.0, 1.0)


# ---------------------------------------------------------------- pipelines

def _to_float(image, size):
    """uint8 or float image -> float32 in [0,1] at size x size."""
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    if image.shape[0] != size:
        image = tf.clip_by_value(tf.image.resize(image, (size, size)), 0.0, 1.0)
    return image


def shift_and_flip(image, seed, shift=CIFAR_SHIFT):
    """The supplement's CIFAR augmentation: shift by up to `shift` px each way, maybe flip."""
    shift_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    h, w = image.shape[0], image.shape[1]
    padded = tf.pad(image, [[shift, shift], [shift, shift], [0, 0]])
    offset = tf.random.stateless_uniform([2], shift_seed, 0, 2 * shift + 1, dtype=tf.int32)
    image = tf.slice(padded, [offset[0], offset[1], 0], [h, w, image.shape[2]])
    return tf.image.stateless_random_flip_left_right(image, flip_seed)


def _with_seeds(ds, seed):
    """Zips each example with its own stateless-op seed pair."""
    return tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed).batch(2)))


def train_size(config):
    """Number of training examples (None for ImageNet TFRecords without data.train_size)."""
    name = config.data.name
    _check_name(name)
    if name == "imagenet":
        return _imagenet_source(config, training=True)[1]
    return len(_arrays(name, config.data.image_size)[0][1])


def train_dataset(config, input_context=None):
    """Infinite, shuffled, augmented, batched (per replica when input_context is given)."""
    name, size, seed = config.data.name, config.data.image_size, config.train.seed
    _check_name(name)
    batch = config.train.batch_size
    if input_context is not None:
        batch = input_context.get_per_replica_batch_size(batch)
    if name == "imagenet":
        ds, _ = _imagenet_source(config, training=True)
        count = config.data.shuffle_buffer
    else:
        (images, labels), _ = _arrays(name, size)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        count = len(labels)
    if input_context is not None:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    ds = ds.shuffle(min(count, config.data.shuffle_buffer), seed=seed,
                    reshuffle_each_iteration=True).repeat()
    ds = _with_seeds(ds, seed)
    if name == "imagenet":
        def prepare(example, pair):
            return _imagenet_train_image(example[0], pair, size), example[1]
    else:
        augment = name == "cifar10" and config.data.augment

        def prepare(example, pair):
            image = _to_float(example[0], size)
            return (shift_and_flip(image, pair) if augment else image), example[1]
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(config):
    """The whole test/validation set once, batched by eval.batch_size, no augmentation."""
    name, size = config.data.name, config.data.image_size
    _check_name(name)
    if name == "imagenet":
        ds, _ = _imagenet_source(config, training=False)
        ds = ds.map(lambda encoded, y: (_imagenet_eval_image(encoded, size), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        _, (images, labels) = _arrays(name, size)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        ds = ds.map(lambda x, y: (_to_float(x, size), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(config.eval.batch_size).prefetch(tf.data.AUTOTUNE)
