"""Classification benchmarks: models, data loaders, the task functions and the configs.

References are independent of the code under test: parameter counts written out by hand,
the CIFAR-10 byte layout rebuilt from its specification, the shift augmentation checked by
brute-force search, evaluation against a float64 NumPy cross-entropy.
"""
import importlib
import pickle
import tarfile

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import classification as data
from models import classifiers
from pose_era.era import ERA, build_activation, build_norm
from training import config as config_lib
from training import driver as train
from training.tasks.classification import ClassificationTask

CONFIGS = ["digits_fcn", "digits_cnn", "mnist_fcn", "mnist_cnn", "cifar10_fcn", "cifar10_cnn",
           "imagenet_resnet18"]
ERA2 = {"degree": 2, "init": "swish", "sharing": "layer"}


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def _conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


@pytest.mark.parametrize("learnable", ["channel", "single"])
def test_fcn_and_cnn_parameter_counts_and_shapes(learnable):
    def norm(channels):  # gamma and beta, per channel or one scalar each
        return 2 * channels if learnable == "channel" else 2

    fcn = classifiers.fcn((28, 28, 1), 10, norm_learnable=learnable)
    expected = (_dense(784, 512) + norm(512) + _dense(512, 256) + norm(256)
                + _dense(256, 128) + norm(128) + _dense(128, 10))
    assert fcn.count_params() == expected
    cnn = classifiers.cnn((28, 28, 1), 10, norm_learnable=learnable)
    expected = (_conv(3, 1, 64) + norm(64) + _conv(3, 64, 64) + norm(64)
                + _dense(14 * 14 * 64, 128) + norm(128) + _dense(128, 10))
    assert cnn.count_params() == expected
    if learnable == "channel":
        assert fcn.count_params() == 569_226 and cnn.count_params() == 1_645_130
    x = np.zeros((3, 28, 28, 1), np.float32)
    assert fcn(x).shape == (3, 10) and cnn(x).shape == (3, 10)
    assert fcn(x).dtype == tf.float32


@pytest.mark.parametrize("scale", [1 / 32, 1.0])
def test_width_scale_scales_every_hidden_layer(scale):
    # hand count at the digits shape (16x16x1): x1/32 = FCN 16-8-4, CNN 2 filters and dense 4
    f1, f2, f3 = (16, 8, 4) if scale < 1 else (512, 256, 128)
    fcn = classifiers.fcn((16, 16, 1), 10, width_scale=scale)
    assert fcn.count_params() == (_dense(256, f1) + 2 * f1 + _dense(f1, f2) + 2 * f2
                                  + _dense(f2, f3) + 2 * f3 + _dense(f3, 10))
    c, d = (2, 4) if scale < 1 else (64, 128)
    cnn = classifiers.cnn((16, 16, 1), 10, width_scale=scale)
    assert cnn.count_params() == (_conv(3, 1, c) + 2 * c + _conv(3, c, c) + 2 * c
                                  + _dense(8 * 8 * c, d) + 2 * d + _dense(d, 10))
    config = config_lib.load_config("digits_cnn")
    config.model.width_scale = scale
    assert ClassificationTask(config).build_model().count_params() == cnn.count_params()


def test_width_scale_rounds_half_up_and_keeps_one_unit():
    assert [classifiers.scaled(n, 0.3) for n in (512, 5, 1)] == [154, 2, 1]
    assert classifiers.scaled(64, 1 / 128) == 1 and classifiers.scaled(128, 1 / 1000) == 1
    with pytest.raises(ValueError, match="width_scale must be > 0"):
        classifiers.scaled(64, 0)


def test_era_adds_one_parameter_set_per_activation():
    relu = classifiers.cnn((8, 8, 3), 10)
    era = classifiers.cnn((8, 8, 3), 10, activation="era", era=ERA2)
    # degree 2: numerator (a, b, c1, d1) + denominator (e1, f1); three activations, layer sharing
    assert era.count_params() - relu.count_params() == 3 * 6
    assert sum(isinstance(layer, ERA) for layer in era.layers) == 3
    kernels = 9 * 3 * 64 + 9 * 64 * 64 + 4 * 4 * 64 * 128 + 128 * 10
    assert ClassificationTask(None).count_params(era) == {
        "total": era.count_params(), "era": 18, "kernels": kernels}


def test_resnet18_shapes_and_standard_size():
    small = classifiers.resnet18((32, 32, 3), 10, width=8)
    assert small(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 10)
    # stage outputs: 32 -> 16 -> 8 -> 4 (cifar stem keeps the resolution)
    assert [l.output.shape[1] for l in small.layers if isinstance(l, keras.layers.Add)] == [
        32, 32, 16, 16, 8, 8, 4, 4]
    full = classifiers.resnet18((224, 224, 3), 1000, stem="imagenet")
    convs = _conv(7, 3, 64, False) + 4 * _conv(3, 64, 64, False)
    for c_in, c_out in ((64, 128), (128, 256), (256, 512)):  # first block: stride 2 + projection
        convs += (_conv(3, c_in, c_out, False) + _conv(1, c_in, c_out, False)
                  + 3 * _conv(3, c_out, c_out, False))
    # instance norm (gamma, beta per channel) before each block's two activations and at the end
    norms = 2 * (64 * 2 + 64 * 2 + (64 + 128) + 128 * 2 + (128 + 256) + 256 * 2 + (256 + 512)
                 + 512 * 2 + 512)
    assert full.count_params() == convs + norms + _dense(512, 1000)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "era"])
def test_a_norm_directly_precedes_every_activation(activation):
    act_type = type(build_activation(activation, ERA2))
    norm_types = (type(build_norm("dense")), type(build_norm("conv")))
    models = {"fcn": (classifiers.fcn((8, 8, 1), 10, activation, ERA2), 3),
              "cnn": (classifiers.cnn((8, 8, 1), 10, activation, ERA2), 3),
              "resnet18": (classifiers.resnet18((16, 16, 3), 10, activation, ERA2, width=4), 17)}
    for name, (model, count) in models.items():
        acts = [l for l in model.layers if isinstance(l, act_type)]
        assert len(acts) == count, name
        for layer in acts:
            parents = [p.operation for p in layer._inbound_nodes[0].parent_nodes]
            assert len(parents) == 1 and isinstance(parents[0], norm_types), (name, layer.name)


def test_regularized_weights_are_conv_and_dense_kernels_only():
    model = classifiers.cnn((8, 8, 1), 10, activation="era", era=ERA2)
    weights = ClassificationTask(None).regularized_weights(model)
    kernels = [l.kernel for l in model.layers
               if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
    assert [id(w) for w in weights] == [id(k) for k in kernels] and len(weights) == 4
    chosen = {id(w) for w in weights}
    others = (ERA, type(build_norm("dense")), type(build_norm("conv")))
    for layer in model.layers:
        if isinstance(layer, others):
            assert layer.weights and not chosen & {id(w) for w in layer.weights}, layer.name
    assert all(len(w.shape) in (2, 4) for w in weights)


def test_digits_split_is_fixed_and_matches_scikit_learn():
    from sklearn.datasets import load_digits
    bunch = load_digits()
    (x_train, y_train), (x_test, y_test) = data.load_digits(8)  # 8x8: no resampling
    assert x_train.shape == (1347, 8, 8, 1) and x_test.shape == (450, 8, 8, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    order = np.random.RandomState(0).permutation(1797)
    np.testing.assert_allclose(x_test[..., 0], bunch.images[order[:450]] / 16.0, atol=1e-6)
    np.testing.assert_array_equal(y_train, bunch.target[order[450:]])
    (big, big_y), (big_test, _) = data.load_digits(28)
    assert big.shape == (1347, 28, 28, 1) and big_test.shape == (450, 28, 28, 1)
    assert big.min() >= 0.0 and big.max() <= 1.0
    np.testing.assert_array_equal(big_y, y_train)
    # upscaling keeps each image's mean ink (bilinear resampling, up to edge effects)
    np.testing.assert_allclose(big.mean(axis=(1, 2)), x_train.mean(axis=(1, 2)), atol=0.02)


@pytest.mark.parametrize("keras_home", [True, False])
def test_missing_keras_cache_gives_one_clear_line(tmp_path, monkeypatch, keras_home):
    monkeypatch.setenv("HOME", str(tmp_path))
    if keras_home:
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "elsewhere"))
    else:
        monkeypatch.delenv("KERAS_HOME", raising=False)
    cache = tmp_path / ("elsewhere" if keras_home else ".keras") / "datasets"
    for load, names in ((data.load_mnist, ["mnist.npz"]),
                        (data.load_cifar10, ["cifar-10-python.tar.gz", "cifar-10-batches-py"])):
        with pytest.raises(FileNotFoundError) as err:
            load()
        message = str(err.value)
        assert "\n" not in message and str(cache) in message
        assert all(name in message for name in names) and "nothing is downloaded" in message
    assert not cache.exists()  # nothing was created or fetched


def _cifar_bytes(images, labels):
    """A CIFAR-10 python batch as specified: rows of 1024 red, 1024 green, 1024 blue bytes."""
    rows = np.concatenate([images[..., c].reshape(len(images), -1) for c in range(3)], axis=1)
    return pickle.dumps({b"data": rows, b"labels": list(labels)})


def test_cifar_and_mnist_are_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    root = tmp_path / "datasets"
    root.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(12) % 10
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i, name in enumerate(names):
            path = tmp_path / name
            path.write_bytes(_cifar_bytes(images[2 * i:2 * i + 2], labels[2 * i:2 * i + 2]))
            tar.add(path, arcname=f"cifar-10-batches-py/{name}")
    (x_train, y_train), (x_test, y_test) = data.load_cifar10()
    np.testing.assert_array_equal(x_train, images[:10])
    np.testing.assert_array_equal(x_test, images[10:])
    np.testing.assert_array_equal(y_train, labels[:10])
    mnist = {"x_train": images[:4, :28, :28, 0], "y_train": labels[:4],
             "x_test": images[4:6, :28, :28, 0], "y_test": labels[4:6]}
    np.savez(root / "mnist.npz", **mnist)
    (x_train, y_train), (x_test, _) = data.load_mnist()
    assert x_train.shape == (4, 28, 28, 1) and x_test.shape == (2, 28, 28, 1)
    np.testing.assert_array_equal(x_train[..., 0], mnist["x_train"])


def test_cifar_shift_and_flip_is_a_shift_of_at_most_6_px():
    image = tf.random.stateless_uniform((32, 32, 3), (1, 2)).numpy()
    padded = np.pad(image, ((6, 6), (6, 6), (0, 0)))
    seen = set()
    for i in range(40):
        out = data.shift_and_flip(tf.constant(image), tf.constant([i, 7])).numpy()
        matches = [(dy, dx, flip) for flip in (False, True) for dy in range(13) for dx in range(13)
                   if np.array_equal(out[:, ::-1] if flip else out,
                                     padded[dy:dy + 32, dx:dx + 32])]
        assert matches, i
        seen.add(matches[0])
    assert len(seen) > 20 and {m[2] for m in seen} == {False, True}


def _digits_config(**train):
    config = config_lib.load_config("digits_fcn")
    config.train.update(train)
    return config


def test_train_dataset_batches_and_shards():
    config = _digits_config(batch_size=32)
    x, y = next(iter(ClassificationTask(config).train_dataset()))
    assert x.shape == (32, 16, 16, 1) and x.dtype == tf.float32 and y.dtype == tf.int32
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    x, _ = next(iter(ClassificationTask(config).train_dataset(context)))
    assert x.shape == (16, 16, 16, 1)
    assert ClassificationTask(config).train_size() == 1347


def test_evaluate_matches_a_float64_reference():
    config = _digits_config()
    config.eval.batch_size = 100  # 450 = 4 full batches and a partial one
    model = ClassificationTask(config).build_model()
    _, (images, labels) = data.load_digits(16)
    logits = model(images, training=False).numpy().astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    result = ClassificationTask(config).evaluate(model, ClassificationTask(config).eval_dataset())
    assert result["loss"] == pytest.approx(-log_probs[np.arange(450), labels].mean(), rel=1e-5)
    assert result["accuracy"] == pytest.approx((logits.argmax(1) == labels).mean())


def test_a_few_sgd_steps_reduce_the_digits_loss():
    config = _digits_config(seed=0)
    keras.utils.set_random_seed(0)
    config.model.activation = "era"
    model = ClassificationTask(config).build_model()
    before = ClassificationTask(config).evaluate(model, ClassificationTask(config).eval_dataset())
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss, metrics = ClassificationTask(config).compute_loss(model, x, y, training=True)
            loss = tf.reduce_mean(loss)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))
        return loss, metrics

    for x, y in ClassificationTask(config).train_dataset().take(60):
        _, metrics = step(x, y)
    after = ClassificationTask(config).evaluate(model, ClassificationTask(config).eval_dataset())
    assert after["loss"] < 0.5 * before["loss"] and after["accuracy"] > 0.8
    assert set(metrics) == {"accuracy"}


def test_the_driver_trains_a_digits_config(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert train.main(["--config", "digits_fcn:quick", "--workdir", str(workdir),
                       "--set", "train.steps=30", "train.jit_compile=false"]) == 0
    result = (workdir / "eval" / "train_eval.json").read_text()
    assert '"accuracy"' in result and '"step": 30' in result


KEYS = ["task", "data.name", "data.image_size", "model.name", "model.activation",
        "model.era.degree", "model.era.init", "model.era.sharing", "model.norm_learnable",
        "train.epochs", "train.steps", "train.batch_size", "train.seed", "train.log_every",
        "train.ckpt_every", "train.eval_every", "train.jit_compile", "train.mixed_precision",
        "optimizer.name", "optimizer.lr", "optimizer.momentum", "optimizer.schedule",
        "optimizer.boundaries", "optimizer.factor", "optimizer.l2", "optimizer.clip_norm",
        "eval.batch_size"]


@pytest.mark.parametrize("name", CONFIGS)
def test_each_config_loads_with_the_shared_keys(name):
    config = config_lib.load_config(name)
    for key in KEYS:
        node = config
        for part in key.split("."):
            assert part in node, f"{name}: {key}"
            node = node[part]
    assert config.task == "classification" and config.optimizer.name == "sgd"
    assert config.data.name in data.SPECS and config.train.epochs > 0
    quick = importlib.import_module(f"configs.{name}").get_config("quick")
    assert quick.train.epochs < config.train.epochs
    with pytest.raises(config_lib.ConfigError, match="quick"):
        importlib.import_module(f"configs.{name}").get_config("fast")


def test_supplement_schedules():
    mnist = config_lib.load_config("mnist_cnn")
    assert (mnist.train.epochs, mnist.train.batch_size, mnist.optimizer.lr) == (100, 32, 1e-4)
    assert tuple(mnist.optimizer.boundaries) == (10, 20, 30, 40, 50, 60)
    cifar = config_lib.load_config("cifar10_cnn")
    assert (cifar.train.epochs, cifar.train.batch_size, cifar.optimizer.lr) == (100, 64, 0.01)
    assert tuple(cifar.optimizer.boundaries) == (25, 50, 75) and cifar.data.augment
    for config in (mnist, cifar):
        assert config.optimizer.momentum == 0.9 and config.optimizer.l2 == 1e-3
    assert isinstance(cifar, ml_collections.ConfigDict)


def test_table_cells_report_mean_sample_std_and_divergence():
    from tools.classification_table import cell
    assert cell([0.98, 0.99, None]) == "98.50 ± 0.71 (1/3 diverged)"
    assert cell([0.5]) == "50.00" and cell([None, None]) == "diverged"


def _imagenet_config(root):
    config = config_lib.load_config("imagenet_resnet18")
    config.data.update(dir=str(root), image_size=16, shuffle_buffer=8)
    config.train.batch_size = 4
    config.eval.batch_size = 3
    return config


def test_imagenet_folders_and_tfrecords(tmp_path):
    rng = np.random.default_rng(0)
    jpegs = {}
    for split in ("train", "val"):
        for label, name in enumerate(["n01", "n02"]):
            folder = tmp_path / "folders" / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                image = rng.integers(0, 256, (30 + 10 * i, 40, 3), dtype=np.uint8)
                encoded = tf.io.encode_jpeg(image).numpy()
                (folder / f"{i}.JPEG").write_bytes(encoded)
                jpegs.setdefault(split, []).append((encoded, label))
    config = _imagenet_config(tmp_path / "folders")
    assert ClassificationTask(config).train_size() == 6
    x, y = next(iter(ClassificationTask(config).train_dataset()))
    assert x.shape == (4, 16, 16, 3) and set(y.numpy()) <= {0, 1}
    batches = list(ClassificationTask(config).eval_dataset())
    assert [b[0].shape[0] for b in batches] == [3, 3]
    assert list(np.concatenate([b[1] for b in batches])) == [0, 0, 0, 1, 1, 1]
    assert all(0.0 <= float(tf.reduce_min(b[0])) <= float(tf.reduce_max(b[0])) <= 1.0
               for b in batches)

    records = tmp_path / "records"
    records.mkdir()
    for split, name in (("train", "train-00000-of-00001"), ("val", "validation-00000-of-00001")):
        with tf.io.TFRecordWriter(str(records / name)) as writer:
            for encoded, label in jpegs[split]:
                feature = {"image/encoded": tf.train.Feature(
                               bytes_list=tf.train.BytesList(value=[encoded])),
                           "image/class/label": tf.train.Feature(
                               int64_list=tf.train.Int64List(value=[label + 1]))}
                writer.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())
    config = _imagenet_config(records)
    x, _ = next(iter(ClassificationTask(config).train_dataset()))
    assert x.shape == (4, 16, 16, 3)
    labels = np.concatenate([b[1] for b in ClassificationTask(config).eval_dataset()])
    assert list(labels) == [0, 0, 0, 1, 1, 1]  # 1-based labels shifted by data.label_offset
    with pytest.raises(FileNotFoundError, match="data.dir"):
        ClassificationTask(_imagenet_config(tmp_path / "nowhere")).train_size()


@pytest.mark.parametrize("override, words", [
    ("model.activation=foo", "unknown activation"),
    ("data.name=svhn", "unknown classification dataset"),
    ("model.norm_learnable=both", "channel, single"),
    ("model.width_scale=0", "width_scale must be > 0"),
])
def test_bad_model_or_data_settings_exit_2_with_one_line(override, words, capsys):
    assert train.main(["--config", "digits_cnn", "--dry_run", "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and words in err
