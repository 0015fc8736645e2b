"""ERA: values against a float64 NumPy formula, gradients against finite differences, the fused
kernel and the plain path against autodiff of the plain formula, dispatch, safety at extreme
inputs, Keras integration (serialisation, SavedModel, XLA, mixed precision, tf.distribute)."""
import importlib.util
import os
import shutil
import subprocess
import sys

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from pose_era.era import ERA, AffineNorm, build_activation, build_norm, fitting, kernel, ops
from pose_era.era.ops import EPS, era_activation, era_formula

REPO = kernel.REPO_ROOT
# Large enough for several rows, blocks and a partial tail row in the fused kernel.
BIG_SHAPE = (5, 131, 103)


def reference(x, numerator, denominator):
    """sigma(x) in float64; parameters (G, 2n + 2) and (G, 2n), G = 1 or x's last axis."""
    x = np.asarray(x, np.float64)
    num, den = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    y = num[:, 0] * x + num[:, 1]
    for i in range(den.shape[1] // 2):
        y = y + (num[:, 2 + 2 * i] * x + num[:, 3 + 2 * i]) / (
            (x - den[:, 2 * i]) ** 2 + den[:, 2 * i + 1] ** 2 + EPS)
    return y


def random_params(rng, groups, degree, f_low=0.3):
    num = rng.normal(size=(groups, degree + 2)).astype(np.float32)
    den = rng.normal(size=(groups, degree)).astype(np.float32)
    den[:, 1::2] = rng.uniform(f_low, 1.5, size=(groups, degree // 2))
    return num, den


def grads(fn, x, num, den, dy):
    x, num, den = (tf.constant(v) for v in (x, num, den))
    with tf.GradientTape() as tape:
        tape.watch([x, num, den])
        y = fn(x, num, den)
    return [y.numpy()] + [g.numpy() for g in tape.gradient(y, [x, num, den],
                                                               output_gradients=dy)]


@pytest.fixture(scope="module")
def fused_kernel():
    """The fused kernel, built by tools/build_era_kernel.py if missing; skipped only without g++."""
    if kernel.load() is None:
        if shutil.which(os.environ.get("CXX", "g++")) is None:
            pytest.skip("g++ not found: the fused ERA kernel cannot be built here")
        subprocess.run([sys.executable, "tools/build_era_kernel.py"], cwd=REPO, check=True)
        kernel.load.cache_clear()
    assert kernel.load() is not None, f"{kernel.LIBRARY} does not load"


@pytest.fixture(params=["plain", "fused"])
def path(request):
    if request.param == "fused":
        request.getfixturevalue("fused_kernel")
    return request.param


@pytest.mark.parametrize("degree", [2, 4, 6])
@pytest.mark.parametrize("sharing", ["layer", "channel"])
def test_values_match_float64_reference(path, degree, sharing):
    rng = np.random.default_rng(degree)
    x = (3 * rng.normal(size=BIG_SHAPE)).astype(np.float32)
    num, den = random_params(rng, BIG_SHAPE[-1] if sharing == "channel" else 1, degree)
    y = era_activation(x, num, den, path=path).numpy()
    expected = reference(x, num, den)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("sharing", ["layer", "channel"])
def test_gradients_match_finite_differences(path, sharing):
    rng = np.random.default_rng(1)
    degree, shape = 4, (3, 4, 5)
    x = (2 * rng.normal(size=shape)).astype(np.float32)
    num, den = random_params(rng, 5 if sharing == "channel" else 1, degree)
    dy = rng.normal(size=shape)
    _, gx, gnum, gden = grads(lambda *a: era_activation(*a, path=path), x, num, den,
                              dy.astype(np.float32))

    def loss(x_, num_, den_):
        return np.sum(dy * reference(x_, num_, den_))
    h = 1e-6
    x64 = x.astype(np.float64)
    fd_x = dy * (reference(x64 + h, num, den) - reference(x64 - h, num, den)) / (2 * h)
    np.testing.assert_allclose(gx, fd_x, rtol=1e-4, atol=1e-5 * np.abs(fd_x).max())
    params = [num.astype(np.float64), den.astype(np.float64)]
    for which, got in ((0, gnum), (1, gden)):
        fd = np.zeros_like(params[which])
        for idx in np.ndindex(fd.shape):
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[which][idx] += h
            minus[which][idx] -= h
            fd[idx] = (loss(x64, *plus) - loss(x64, *minus)) / (2 * h)
        np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-4 * np.abs(fd).max())


@pytest.mark.parametrize("degree", [2, 4])
@pytest.mark.parametrize("sharing", ["layer", "channel"])
def test_paths_match_autodiff_of_plain_formula(path, degree, sharing):
    rng = np.random.default_rng(degree + 10)
    x = (3 * rng.normal(size=BIG_SHAPE)).astype(np.float32)
    num, den = random_params(rng, BIG_SHAPE[-1] if sharing == "channel" else 1, degree)
    dy = rng.normal(size=BIG_SHAPE).astype(np.float32)
    got = grads(lambda *a: era_activation(*a, path=path), x, num, den, dy)
    want = grads(era_formula, x, num, den, dy)
    for name, g, w in zip(("y", "dx", "dnumerator", "ddenominator"), got, want):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * np.abs(w).max(), err_msg=name)


def test_fused_kernel_odd_shapes_and_bad_parameters(fused_kernel):
    rng = np.random.default_rng(3)
    for shape, groups in (((0, 4), 4), ((1,), 1), ((7,), 7), ((2, 3, 1), 1), ((300, 2), 2)):
        x = rng.normal(size=shape).astype(np.float32)
        num, den = random_params(rng, groups, 4)
        got = grads(lambda *a: era_activation(*a, path="fused"), x, num, den,
                    np.ones(shape, np.float32))
        want = grads(era_formula, x, num, den, np.ones(shape, np.float32))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    ops_lib = kernel.load()
    with pytest.raises(tf.errors.InvalidArgumentError, match="parameter groups"):
        ops_lib.era_forward(tf.zeros([2, 5]), tf.zeros([3, 4]), tf.zeros([3, 2]), eps=EPS)
    with pytest.raises(tf.errors.InvalidArgumentError, match="numerator"):
        ops_lib.era_forward(tf.zeros([2, 5]), tf.zeros([1, 5]), tf.zeros([1, 2]), eps=EPS)


def test_extreme_inputs_and_zero_f_stay_finite(path):
    rng = np.random.default_rng(4)
    num, den = random_params(rng, 1, 4)
    num *= 10.0
    den[0, 1] = 0.0                       # f = 0: a double pole at e_1 without eps
    den[0, 3] = 1e-20
    x = np.concatenate([[-1e6, 1e6, -1e3, 1e3, 0.0], np.linspace(-1e6, 1e6, 101),
                        den[0, ::2], den[0, ::2] + 1e-4]).astype(np.float32)
    got = grads(lambda *a: era_activation(*a, path=path), x, num, den, np.ones_like(x))
    for name, g in zip(("y", "dx", "dnumerator", "ddenominator"), got):
        assert np.all(np.isfinite(g)), name
    np.testing.assert_allclose(got[0], reference(x, num, den), rtol=1e-4)


def test_extreme_inputs_finite_under_xla():
    rng = np.random.default_rng(5)
    num, den = random_params(rng, 1, 2)
    den[0, 1] = 0.0
    x = tf.constant(np.concatenate([[-1e6, 1e6], np.linspace(-1e6, 1e6, 11), den[0, :1]]),
                    tf.float32)

    @tf.function(jit_compile=True)
    def step(x, num, den):
        with tf.GradientTape() as tape:
            tape.watch([x, num, den])
            y = era_activation(x, num, den)
        return [y, *tape.gradient(y, [x, num, den])]
    for g in step(x, tf.constant(num), tf.constant(den)):
        assert np.all(np.isfinite(g.numpy()))


def test_dispatch_rules(fused_kernel, monkeypatch):
    x = tf.ones([4, 3])
    assert ops.use_fused(x)
    with ops.force_plain():
        assert not ops.use_fused(x)
    monkeypatch.setenv(ops.ENV_PATH, "plain")
    assert not ops.use_fused(x)
    monkeypatch.setenv(ops.ENV_PATH, "fast")
    with pytest.raises(ValueError, match="plain or auto"):
        ops.use_fused(x)
    monkeypatch.delenv(ops.ENV_PATH)
    seen = {}

    @tf.function(jit_compile=True)
    def in_xla(x):
        seen["xla"] = ops.use_fused(x)
        return x

    @tf.function
    def in_graph(x):
        seen["graph"] = ops.use_fused(x)
        with tf.device("/GPU:0"):  # traced only: the op would be placed on a GPU
            seen["gpu"] = ops.use_fused(tf.identity(x))
        return x
    in_xla.get_concrete_function(x)
    in_graph.get_concrete_function(x)
    assert seen == {"xla": False, "graph": True, "gpu": False}


def _graph_ops(concrete):
    """Op types of a concrete function's graph, including the functions it calls."""
    graph_def = concrete.graph.as_graph_def()
    return {n.op for n in graph_def.node} | {
        n.op for f in graph_def.library.function for n in f.node_def}


def _op_types(fn, x):
    return _graph_ops(fn.get_concrete_function(x))


def test_auto_path_uses_kernel_only_outside_xla_and_when_not_forced(fused_kernel):
    layer = ERA(degree=4)
    x = tf.random.normal([2, 8])

    def fwd_bwd(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return tape.gradient(y, x)
    assert {"EraForward", "EraBackward"} <= _op_types(tf.function(fwd_bwd), x)
    assert not {"EraForward", "EraBackward"} & _op_types(
        tf.function(fwd_bwd, jit_compile=True), x)
    with ops.force_plain():
        assert "EraForward" not in _op_types(tf.function(fwd_bwd), x)


def test_xla_matches_eager():
    layer = ERA(degree=4, init="gelu", sharing="channel")
    x = tf.random.stateless_normal([4, 6, 8], seed=(1, 1)) * 2
    layer.build(x.shape)
    layer.numerator.assign(layer.numerator + tf.random.stateless_normal(
        layer.numerator.shape, seed=(2, 2)) * 0.1)

    def fwd_bwd(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return [y, *tape.gradient(y, [x, *layer.trainable_variables])]
    for a, b in zip(fwd_bwd(x), tf.function(fwd_bwd, jit_compile=True)(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_layer_parameter_shapes_and_per_channel_math():
    x = np.random.default_rng(6).normal(size=(2, 3, 3, 5)).astype(np.float32)
    shared, per_channel = ERA(degree=4), ERA(degree=4, sharing="channel")
    shared(x)
    per_channel(x)
    assert shared.numerator.shape == (1, 6) and shared.denominator.shape == (1, 4)
    assert per_channel.numerator.shape == (5, 6) and per_channel.denominator.shape == (5, 4)
    num, den = random_params(np.random.default_rng(7), 5, 4)
    per_channel.numerator.assign(num)
    per_channel.denominator.assign(den)
    y = per_channel(x).numpy()
    for c in range(5):
        np.testing.assert_allclose(y[..., c], reference(x[..., c], num[c:c + 1], den[c:c + 1]),
                                   rtol=1e-5, atol=1e-5)


def test_fitted_init_matches_table_and_target():
    layer = ERA(degree=4, init="gelu")
    x = np.linspace(-3, 3, 2001, dtype=np.float32)
    y = layer(x[:, None]).numpy()[:, 0]
    num, den = fitting.initial_parameters("gelu", 4)
    np.testing.assert_allclose(layer.numerator.numpy()[0], num, rtol=1e-6)
    np.testing.assert_allclose(layer.denominator.numpy()[0], den, rtol=1e-6)
    gelu = 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2)))
    assert np.max(np.abs(y - gelu)) < 0.005


def test_random_init_keeps_poles_off_the_axis():
    a, b = ERA(degree=4, init="random"), ERA(degree=4, init="random")
    a.build((None, 3))
    b.build((None, 3))
    f = a.denominator.numpy()[:, 1::2]
    assert np.all((f >= 0.5) & (f <= 1.5))
    assert np.all(np.abs(a.numerator.numpy()) <= np.sqrt(3 / 6))
    assert not np.allclose(a.numerator.numpy(), b.numerator.numpy())


@pytest.mark.parametrize("kwargs, message", [
    ({"degree": 3}, "even integer >= 2"), ({"degree": -2}, "even integer >= 2"),
    ({"degree": 0}, "even integer >= 2"), ({"degree": True}, "even integer >= 2"),
    ({"init": "tanh"}, "unknown ERA init 'tanh'"), ({"sharing": "pixel"}, "unknown ERA sharing"),
    ({"fit_range": (3, -3)}, "low < high"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ERA(**kwargs)


def test_mismatched_parameter_groups_is_a_clear_error():
    with pytest.raises(ValueError, match="parameter groups"):
        era_activation(tf.zeros([2, 5]), tf.zeros([3, 4]), tf.zeros([3, 2]))


def _model():
    inputs = keras.Input((6, 5))
    h = build_norm("dense", "single")(inputs)
    h = ERA(degree=4, init="relu", sharing="channel")(h)
    h = keras.layers.Dense(4)(h)
    h = ERA(degree=2, init="random")(h)
    return keras.Model(inputs, keras.layers.Dense(2)(h))


def test_keras_file_round_trip_gives_identical_outputs(tmp_path):
    model = _model()
    rng = np.random.default_rng(8)
    for w in model.weights:
        w.assign(w + rng.normal(size=w.shape).astype(np.float32) * 0.1)
    x = rng.normal(size=(3, 6, 5)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())
    era = [layer for layer in loaded.layers if isinstance(layer, ERA)]
    assert [e.get_config()["degree"] for e in era] == [4, 2]
    assert era[0].get_config()["sharing"] == "channel" and era[1].init == "random"


def test_savedmodel_export(tmp_path, fused_kernel):
    model = _model()
    x = np.random.default_rng(9).normal(size=(2, 6, 5)).astype(np.float32)
    model.export(tmp_path / "with_kernel", verbose=False)
    with ops.force_plain():
        model.export(tmp_path / "portable", verbose=False)
    loaded = {name: tf.saved_model.load(str(tmp_path / name))
              for name in ("with_kernel", "portable")}
    for name, module in loaded.items():
        np.testing.assert_allclose(module.serve(x).numpy(), model(x).numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    assert "EraForward" in _graph_ops(loaded["with_kernel"].signatures["serving_default"])
    assert "EraForward" not in _graph_ops(loaded["portable"].signatures["serving_default"])


def test_mixed_precision_computes_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = ERA(degree=4, init="swish")
        dense = keras.layers.Dense(3)
        x = tf.constant(np.array([[-65504.0, -3.0, 0.5, 7.0, 65504.0]]), tf.float16)
        layer.build(x.shape)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            out = dense(y)
        assert layer.compute_dtype == "float32" and y.dtype == tf.float32
        assert out.dtype == tf.float16
        np.testing.assert_allclose(y.numpy(), reference(
            x.numpy().astype(np.float32), layer.numerator.numpy(), layer.denominator.numpy()),
            rtol=1e-5)
        gx, gnum, gden = tape.gradient(y, [x, layer.numerator, layer.denominator])
        assert gx.dtype == tf.float16 and gnum.dtype == tf.float32
        den = layer.denominator.numpy()
        den[:, 1::2] = 0.0
        layer.denominator.assign(den)
        with tf.GradientTape() as tape:
            y = layer(x)
        g = tape.gradient(y, layer.trainable_variables)
        assert all(np.all(np.isfinite(t.numpy())) for t in [y, *g])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mirrored_strategy_matches_single_device():
    x = np.random.default_rng(10).normal(size=(8, 6)).astype(np.float32)

    def make():
        layer = ERA(degree=4, init="gelu", sharing="channel")
        layer.build((None, 6))
        layer.numerator.assign(layer.numerator + 0.05)
        return layer

    single = make()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(single(x)))
    want = [g.numpy() for g in tape.gradient(loss, single.trainable_variables)]

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = make()
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(8))

    @tf.function
    def step(batch):
        def replica(b):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(layer(b)))
            return tape.gradient(loss, layer.trainable_variables)
        per_replica = strategy.run(replica, args=(batch,))
        return [strategy.reduce("SUM", g, axis=None) for g in per_replica]
    got = step(next(iter(dataset)))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-5, atol=1e-5)


def test_build_activation():
    x = np.linspace(-4, 4, 41, dtype=np.float32)[None, :]
    from scipy.special import erf
    expected = {"relu": np.maximum(x, 0), "leaky_relu": np.where(x > 0, x, 0.2 * x),
                "swish": x / (1 + np.exp(-x)), "gelu": 0.5 * x * (1 + erf(x / np.sqrt(2)))}
    for name, want in expected.items():
        np.testing.assert_allclose(build_activation(name)(x).numpy(), want, rtol=1e-5,
                                   atol=1e-6)
    layer = build_activation("era", ml_collections.ConfigDict(
        {"degree": 4, "init": "relu", "sharing": "channel"}))
    assert isinstance(layer, ERA) and (layer.degree, layer.init, layer.sharing) == (
        4, "relu", "channel")
    assert build_activation("era").degree == 2
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        build_activation("tanh")
    with pytest.raises(ValueError, match="valid keys"):
        build_activation("era", {"degre": 4})


def test_build_norm_matches_numpy_layer_and_instance_norm():
    rng = np.random.default_rng(11)
    for kind, shape, axes in (("dense", (2, 7, 6), (-1,)), ("conv", (2, 4, 5, 6), (1, 2))):
        for learnable, size in (("channel", 6), ("single", 1)):
            x = (3 * rng.normal(size=shape) + 1).astype(np.float32)
            layer = build_norm(kind, learnable)
            layer.build(shape)
            assert isinstance(layer, AffineNorm) and layer.gamma.shape == (size,)
            gamma, beta = rng.normal(size=size), rng.normal(size=size)
            layer.gamma.assign(gamma.astype(np.float32))
            layer.beta.assign(beta.astype(np.float32))
            x64 = x.astype(np.float64)
            mean, var = x64.mean(axis=axes, keepdims=True), x64.var(axis=axes, keepdims=True)
            want = (x64 - mean) / np.sqrt(var + 1e-3) * gamma + beta
            np.testing.assert_allclose(layer(x).numpy(), want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="unknown normalisation kind"):
        build_norm("batch")
    with pytest.raises(ValueError, match="instance norm needs"):
        build_norm("conv")(np.zeros((2, 3), np.float32))


def test_build_tool_skips_when_up_to_date_and_fails_loudly(fused_kernel, tmp_path, monkeypatch,
                                                           capsys):
    spec = importlib.util.spec_from_file_location("build_era_kernel",
                                                  REPO / "tools" / "build_era_kernel.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.build() == 0
    assert "up to date" in capsys.readouterr().out
    broken = tmp_path / "broken.cc"
    broken.write_text("int broken( {\n")
    monkeypatch.setattr(tool, "SOURCES", (broken,))
    monkeypatch.setattr(tool, "LIBRARY", tmp_path / "broken.so")
    assert tool.build() == 1
    assert "failed" in capsys.readouterr().err and not (tmp_path / "broken.so").exists()


def test_missing_kernel_falls_back_to_plain_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(kernel, "LIBRARY", tmp_path / "missing.so")
    kernel.load.cache_clear()
    try:
        with caplog.at_level("WARNING", logger=kernel.__name__):
            x = tf.constant([[-1.0, 0.5, 2.0]])
            num, den = random_params(np.random.default_rng(12), 1, 2)
            for _ in range(3):
                y = era_activation(x, num, den)
        assert sum("not built" in r.getMessage() for r in caplog.records) == 1
        np.testing.assert_allclose(y.numpy(), reference(x.numpy(), num, den), rtol=1e-6)
        with pytest.raises(ValueError, match="make kernels"):
            era_activation(x, num, den, path="fused")
    finally:
        monkeypatch.undo()
        kernel.load.cache_clear()
