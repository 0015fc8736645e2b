"""One place that turns an activation name from a config into a Keras layer."""
import keras

from pose_era.era.layer import ERA

ACTIVATIONS = ("relu", "leaky_relu", "swish", "gelu", "era")
LEAKY_SLOPE = 0.2  # TF's default, as in the ERA reference
ERA_KEYS = ("degree", "init", "sharing", "slope", "fit_range", "name")


def build_activation(name, era=None):
    """A Keras layer for `name`; `era` (dict or ConfigDict of ERA arguments: degree, init,
    sharing, ...) configures the layer when name == "era". gelu is the exact (erf) form."""
    if name == "relu":
        return keras.layers.ReLU()
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE)
    if name == "swish":
        return keras.layers.Activation("silu")
    if name == "gelu":
        return keras.layers.Activation("gelu")
    if name == "era":
        kwargs = dict(era.to_dict() if hasattr(era, "to_dict") else (era or {}))
        unknown = sorted(set(kwargs) - set(ERA_KEYS))
        if unknown:
            raise ValueError(f"unknown ERA setting(s) {', '.join(unknown)}; valid keys are "
                             f"{', '.join(ERA_KEYS)}")
        return ERA(**kwargs)
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
