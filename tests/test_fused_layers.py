"""models/fused_layers.py: the fused MobileNetV2 computes the plain one's function exactly
(outputs in both modes, moving statistics, gradients) and reads its weights and checkpoints."""
import numpy as np
import keras
import pytest
import tensorflow as tf

from models import fused_layers
from models.fused_layers import fuse


def _pair(size=64, momentum=0.9):
    plain = keras.applications.MobileNetV2(include_top=False, weights=None,
                                           input_shape=(size, size, 3))
    for layer in plain.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
    fused = fuse(plain)
    fused.set_weights(plain.get_weights())
    return plain, fused


def test_every_batch_norm_and_pad_is_replaced_and_the_variables_keep_their_names():
    plain, fused = _pair()
    kinds = lambda model, cls: sum(isinstance(l, cls) for l in model.layers)  # noqa: E731
    assert kinds(fused, fused_layers.BatchNormalization) == \
        kinds(plain, keras.layers.BatchNormalization)
    assert kinds(plain, keras.layers.ZeroPadding2D) == 4 and \
        kinds(fused, keras.layers.ZeroPadding2D) == 0
    assert [w.path for w in fused.weights] == [w.path for w in plain.weights]


def test_same_outputs_and_moving_statistics_in_both_modes():
    plain, fused = _pair()
    x = tf.random.uniform((4, 64, 64, 3), -1, 1, seed=1)
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), atol=1e-5)
    yp, yf = plain(x, training=True), fused(x, training=True)
    np.testing.assert_allclose(yf, yp, atol=1e-4 * float(tf.reduce_max(tf.abs(yp))))
    for a, b in zip(fused.non_trainable_weights, plain.non_trainable_weights):  # moving stats
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)


def test_same_gradients_through_an_inverted_residual_block():
    """MobileNetV2's pattern (1x1 conv, BN, ReLU6, pad + stride-2 depthwise, BN, ReLU6, 1x1 conv,
    BN) in a float64 reference and both float32 forms. A whole randomly initialised MobileNetV2
    is too ill-conditioned for this: its plain float32 gradients are already up to ~2 % off
    float64, and any change of rounding (such as a fused kernel's) moves them by as much."""
    def block(dtype):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((16, 16, 8), dtype=dtype)
        x = keras.layers.Conv2D(24, 1, use_bias=False, dtype=dtype)(inputs)
        x = keras.layers.BatchNormalization(dtype=dtype)(x)
        x = keras.layers.ReLU(6.0, dtype=dtype)(x)
        x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), dtype=dtype)(x)
        x = keras.layers.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False,
                                         dtype=dtype)(x)
        x = keras.layers.BatchNormalization(dtype=dtype)(x)
        x = keras.layers.ReLU(6.0, dtype=dtype)(x)
        x = keras.layers.Conv2D(8, 1, use_bias=False, dtype=dtype)(x)
        return keras.Model(inputs, keras.layers.BatchNormalization(dtype=dtype)(x))

    def gradients(model, x):
        with tf.GradientTape() as tape:
            y = model(tf.cast(x, model.dtype), training=True)
            loss = tf.reduce_mean(tf.square(y - tf.cast(tf.range(8), y.dtype)))
        return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]

    plain, reference = block("float32"), block("float64")
    fused = fuse(plain)
    fused.set_weights(plain.get_weights())
    reference.set_weights([w.astype(np.float64) for w in plain.get_weights()])
    x = tf.random.normal((4, 16, 16, 8), seed=3)
    expected = gradients(reference, x)
    scale = max(np.abs(g).max() for g in expected)
    for model in (plain, fused):
        for got, want in zip(gradients(model, x), expected):
            np.testing.assert_allclose(got, want, atol=1e-5 * scale)


def test_weights_files_and_checkpoints_of_the_plain_network_load(tmp_path):
    plain, _ = _pair()
    fresh = fuse(keras.applications.MobileNetV2(include_top=False, weights=None,
                                                input_shape=(64, 64, 3)))
    plain.save_weights(str(tmp_path / "plain.weights.h5"))
    fresh.load_weights(str(tmp_path / "plain.weights.h5"))
    x = tf.random.uniform((2, 64, 64, 3), -1, 1, seed=2)
    np.testing.assert_allclose(fresh(x), plain(x), atol=1e-5)
    prefix = tf.train.Checkpoint(model=plain).save(str(tmp_path / "ckpt"))
    other = fuse(keras.applications.MobileNetV2(include_top=False, weights=None,
                                                input_shape=(64, 64, 3)))
    tf.train.Checkpoint(model=other).restore(prefix).assert_consumed()
    np.testing.assert_allclose(other(x), plain(x), atol=1e-5)


def test_a_pad_that_same_padding_would_not_reproduce_is_refused():
    inputs = keras.Input((9, 9, 4))
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(inputs)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="valid")(x)
    with pytest.raises(ValueError, match="even-sized map"):
        fuse(keras.Model(inputs, x))
