"""Normalisation as the ERA paper places it before every activation.

Conv features (B, ..., C): instance norm, per sample and channel over the spatial axes. Dense or
token features (..., C): layer norm over the last axis. The learnable affine is either one
gamma/beta per channel ("channel") or one scalar gamma/beta ("single"), the two choices of the
supplement's Tables 2-3. One layer does both so that the math exists once; Keras's
LayerNormalization/GroupNormalization have no scalar-affine option. Computed in float32 (the
reference's TF layer divides by the raw std, ignoring its epsilon; this one adds epsilon to the
variance).
"""
import keras
from keras import ops

MODES = {"dense": "layer", "conv": "instance"}
LEARNABLE = ("channel", "single")


@keras.saving.register_keras_serializable(package="pose_era")
class AffineNorm(keras.layers.Layer):
    """(x - mean) / sqrt(var + epsilon) * gamma + beta.

    Args:
        mode: "layer" (statistics over the last axis) or "instance" (over the axes between batch
            and channels; needs rank >= 3).
        learnable: "channel" (gamma, beta of shape (C,)) or "single" (shape (1,)).
        epsilon: added to the variance.
    """

    def __init__(self, mode="layer", learnable="channel", epsilon=1e-3, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if mode not in MODES.values():
            raise ValueError(f"unknown normalisation mode {mode!r}; choose layer or instance")
        if learnable not in LEARNABLE:
            raise ValueError(f"unknown learnable {learnable!r}; choose one of "
                             f"{', '.join(LEARNABLE)}")
        self.mode = mode
        self.learnable = learnable
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        if self.mode == "instance" and len(input_shape) < 3:
            raise ValueError(f"instance norm needs (batch, ..., channels) with spatial axes, got "
                             f"shape {input_shape}; use kind='dense' (layer norm)")
        size = input_shape[-1] if self.learnable == "channel" else 1
        if size is None:
            raise ValueError(f"learnable='channel' needs a known last axis, got {input_shape}")
        self.gamma = self.add_weight(shape=(size,), name="gamma", initializer="ones")
        self.beta = self.add_weight(shape=(size,), name="beta", initializer="zeros")

    def call(self, inputs):
        axes = [-1] if self.mode == "layer" else list(range(1, len(inputs.shape) - 1))
        mean, var = ops.moments(inputs, axes=axes, keepdims=True)
        return (inputs - mean) * ops.rsqrt(var + self.epsilon) * self.gamma + self.beta

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        layer_config = super().get_config()
        layer_config.pop("dtype", None)
        layer_config.update(mode=self.mode, learnable=self.learnable, epsilon=self.epsilon)
        return layer_config


def build_norm(kind, learnable="channel"):
    """kind "dense" -> layer norm, "conv" -> instance norm; learnable "channel" or "single"."""
    if kind not in MODES:
        raise ValueError(f"unknown normalisation kind {kind!r}; choose one of "
                         f"{', '.join(MODES)}")
    return AffineNorm(MODES[kind], learnable)
