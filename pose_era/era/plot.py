"""Figures of learned ERA functions, as in the paper: the learned sigma against its
initialisation, its derivative, and the density of the layer's pre-activations shaded behind.

Works on any Keras model: the ERA layers' inputs are captured by wrapping their `call` for one
eager forward pass (so shared layers called several times contribute every call).
"""
from pathlib import Path

import numpy as np

from pose_era import io
from pose_era.era import fitting
from pose_era.era.layer import ERA

MAX_VALUES = 200_000   # pre-activation samples kept per layer
MAX_CURVES = 8         # channels drawn for sharing="channel"


def era_layers(model):
    """Every ERA layer inside `model` (nested models and layers included), in order, once."""
    layers = [layer for layer in model._flatten_layers(include_self=True, recursive=True)
              if isinstance(layer, ERA)]
    return list({id(layer): layer for layer in layers}.values())


def capture_era_inputs(model, sample_inputs, max_values=MAX_VALUES):
    """{layer: float32 array (N, groups)} of what each ERA layer received in one eager
    forward pass of `model(sample_inputs)` (columns = channels for sharing="channel")."""
    layers = era_layers(model)
    captured = {id(layer): [] for layer in layers}

    def wrap(layer):
        original = layer.call

        def recording_call(inputs, *args, **kwargs):
            captured[id(layer)].append(np.asarray(inputs, dtype=np.float32))
            return original(inputs, *args, **kwargs)
        return recording_call

    for layer in layers:
        object.__setattr__(layer, "call", wrap(layer))
    try:
        model(sample_inputs, training=False)
    finally:
        for layer in layers:
            object.__delattr__(layer, "call")
    rng = np.random.default_rng(0)
    out = {}
    for layer in layers:
        if not captured[id(layer)]:
            continue
        groups = layer.numerator.shape[0]
        values = np.concatenate([v.reshape(-1, groups) for v in captured[id(layer)]])
        if len(values) * groups > max_values:
            values = values[rng.choice(len(values), max(1, max_values // groups), replace=False)]
        out[layer] = values
    return out


def _initial(layer):
    """The layer's initial (numerator, denominator), or None for random init (not stored)."""
    if layer.init == "random":
        return None
    return fitting.initial_parameters(layer.init, layer.degree, layer.fit_range, layer.slope)


def plot_layer(layer, inputs, path):
    """Writes one PNG for `layer` given its captured pre-activations (N, groups)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numerator = np.asarray(layer.numerator.numpy(), np.float64)
    denominator = np.asarray(layer.denominator.numpy(), np.float64)
    lo, hi = np.quantile(inputs, [0.001, 0.999])
    lo, hi = min(lo, layer.fit_range[0]), max(hi, layer.fit_range[1])
    pad = 0.05 * (hi - lo)
    x = np.linspace(lo - pad, hi + pad, 600)
    init = _initial(layer)
    channels = range(min(len(numerator), MAX_CURVES))

    fig, axes = plt.subplots(2, 1, figsize=(6, 6.5), sharex=True)
    for ax, fn, label in ((axes[0], fitting.rational, "sigma(x)"),
                          (axes[1], fitting.rational_dx, "sigma'(x)")):
        density = ax.twinx()
        density.hist(inputs.ravel(), bins=120, range=(x[0], x[-1]), density=True,
                     color="0.85", zorder=0)
        density.set_yticks([])
        ax.set_zorder(density.get_zorder() + 1)
        ax.patch.set_visible(False)
        for c in channels:
            name = "learned" if len(numerator) == 1 else f"learned, channel {c}"
            ax.plot(x, fn(numerator[c], denominator[c], x), lw=1.6, label=name)
        if init is not None:
            ax.plot(x, fn(init[0], init[1], x), "k--", lw=1.2, label=f"init ({layer.init})")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    axes[1].set_xlabel("pre-activation x (grey: its density)")
    note = "" if init is not None else ", random init (not stored)"
    axes[0].set_title(f"{layer.name}: ERA degree {layer.degree}, {layer.sharing} sharing{note}",
                      fontsize=9)
    fig.tight_layout()
    try:
        return io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


def plot_era_layers(model, sample_inputs, out_dir):
    """One PNG per ERA layer of `model` (run on `sample_inputs`) in out_dir; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    captured = capture_era_inputs(model, sample_inputs)
    if not captured:
        raise ValueError("the model has no ERA layer that ran on the sample inputs; nothing to "
                         "plot (was it built with activation='era'?)")
    return [plot_layer(layer, values, out_dir / f"{i:02d}_{layer.name}.png")
            for i, (layer, values) in enumerate(captured.items())]
