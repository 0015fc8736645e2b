"""The ERA Keras layer: a learnable rational activation (Trimmel et al., ECCV 2022).

    sigma(x) = a x + b + sum_{i=1..n} (c_i x + d_i) / ((x - e_i)^2 + f_i^2 + eps),  degree = 2n

Weights: `numerator` (G, degree + 2) = [a, b, c_1, d_1, ...] and `denominator` (G, degree) =
[e_1, f_1, ...], G = 1 for sharing="layer" (the paper's default: one set shared over every
non-batch axis) or G = channels for sharing="channel" (one set per last-axis channel).
The layer always runs with the float32 dtype policy: under mixed precision its inputs are cast to
float32 and its output is float32 (finite for any input and parameters; the next layer casts it
back to its compute dtype), like Keras's advice for numerically sensitive layers.
"""
import keras
import numpy as np

from pose_era.era import fitting
from pose_era.era.ops import era_activation

SHARINGS = ("layer", "channel")
RANDOM_F_RANGE = (0.5, 1.5)  # random init keeps the poles well off the real axis


def _fitted_initializer(values):
    def initialize(shape, dtype=None):
        return keras.ops.cast(np.broadcast_to(values, shape), dtype or "float32")
    return initialize


def _glorot_rows(shape, dtype, f_range=None):
    """GlorotUniform of the reference (each parameter vector of length k drawn from
    U(-sqrt(3 / k), sqrt(3 / k))), with every f_i (odd columns) drawn from f_range instead."""
    limit = float(np.sqrt(3.0 / shape[1]))
    values = keras.random.uniform(shape, -limit, limit, dtype=dtype)
    if f_range is None:
        return values
    f = keras.random.uniform(shape, f_range[0], f_range[1], dtype=dtype)
    odd = np.arange(shape[1]) % 2 == 1
    return keras.ops.where(odd, f, values)


@keras.saving.register_keras_serializable(package="pose_era")
class ERA(keras.layers.Layer):
    """Enhanced Rational Activation.

    Args:
        degree: denominator degree 2n, any even integer >= 2 (2 and 4 are the paper's).
        init: relu, leaky_relu, swish, gelu (exact), gelu_tanh (fitted on fit_range), or random.
        sharing: "layer" (one parameter set) or "channel" (one per last-axis channel).
        slope: negative slope of the leaky_relu target (0.2, TF's default as in the reference).
        fit_range: interval the initial fit is made on.
    """

    def __init__(self, degree=2, init="swish", sharing="layer", slope=0.2,
                 fit_range=(-3.0, 3.0), **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        fitting.check_degree(degree)
        if init not in fitting.INITS:
            raise ValueError(f"unknown ERA init {init!r}; choose one of "
                             f"{', '.join(fitting.INITS)}")
        if sharing not in SHARINGS:
            raise ValueError(f"unknown ERA sharing {sharing!r}; choose one of "
                             f"{', '.join(SHARINGS)}")
        fit_range = tuple(float(v) for v in fit_range)
        if len(fit_range) != 2 or not fit_range[0] < fit_range[1]:
            raise ValueError(f"ERA fit_range must be (low, high) with low < high, got {fit_range}")
        self.degree = int(degree)
        self.init = init
        self.sharing = sharing
        self.slope = float(slope)
        self.fit_range = fit_range
        self.supports_masking = True

    def build(self, input_shape):
        groups = 1
        if self.sharing == "channel":
            groups = input_shape[-1] if len(input_shape) else None
            if groups is None:
                raise ValueError(f"ERA sharing='channel' needs a known last axis, got input shape "
                                 f"{input_shape}")
        if self.init == "random":
            num_init = _glorot_rows
            den_init = lambda shape, dtype=None: _glorot_rows(shape, dtype, RANDOM_F_RANGE)  # noqa: E731
        else:
            num, den = fitting.initial_parameters(self.init, self.degree, self.fit_range,
                                                  self.slope)
            num_init, den_init = _fitted_initializer(num), _fitted_initializer(den)
        self.numerator = self.add_weight(shape=(groups, self.degree + 2), name="numerator",
                                         initializer=num_init)
        self.denominator = self.add_weight(shape=(groups, self.degree), name="denominator",
                                           initializer=den_init)

    def call(self, inputs):
        return era_activation(inputs, self.numerator.value, self.denominator.value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        layer_config = super().get_config()
        layer_config.pop("dtype", None)  # always float32, set by __init__
        layer_config.update(degree=self.degree, init=self.init, sharing=self.sharing,
                            slope=self.slope, fit_range=list(self.fit_range))
        return layer_config
