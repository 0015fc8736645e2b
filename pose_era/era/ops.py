"""ERA's math in TensorFlow: the plain formula, its hand-written backward, and the dispatch to
the fused CPU kernel.

    sigma(x) = a x + b + sum_i (c_i x + d_i) / ((x - e_i)^2 + f_i^2 + EPS)

Parameters: `numerator` (G, 2n + 2) = [a, b, c_1, d_1, ...], `denominator` (G, 2n) =
[e_1, f_1, ...], with G = 1 (one set for the whole tensor) or G = the last axis size (one set
per channel). Both differentiable paths keep only x and the parameters for the backward pass and
compute dx and every parameter gradient together; `era_formula` (plain autodiff) is the
reference they are tested against.
"""
import contextlib
import os

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

from pose_era.era import kernel

# The denominator is >= EPS, so sigma and its gradients stay finite for any parameters, f = 0
# included (|sigma| <= |c x + d| / EPS); fitted inits have f^2 >= 0.01, where EPS is invisible.
EPS = 1e-6

PATHS = ("auto", "fused", "plain")
# Setting POSE_ERA_ERA_PATH=plain (or `with force_plain():`) makes "auto" use the plain path,
# e.g. to export a SavedModel that loads without the custom-op library.
ENV_PATH = "POSE_ERA_ERA_PATH"
# Process-wide, not thread-local: MirroredStrategy traces each replica in its own thread.
_forced = {"plain": False}


def era_formula(x, numerator, denominator):
    """sigma(x) as plain TF ops (differentiable by autodiff; float32 in, float32 out)."""
    a, b = numerator[:, 0], numerator[:, 1]
    y = a * x + b
    for i in range(denominator.shape[1] // 2):
        c, d = numerator[:, 2 + 2 * i], numerator[:, 3 + 2 * i]
        e, f = denominator[:, 2 * i], denominator[:, 2 * i + 1]
        y += (c * x + d) / (tf.square(x - e) + tf.square(f) + EPS)
    return y


def _group_sum(t, groups):
    """Sums t over every axis but the parameter-group axis: shape (groups,)."""
    return tf.reduce_sum(tf.reshape(t, [-1, groups]), axis=0)


def plain_backward(dy, x, numerator, denominator):
    """(dx, dnumerator, ddenominator) of sum(dy * sigma(x)) as plain TF ops."""
    groups = numerator.shape[0]
    a = numerator[:, 0]
    dx = a * dy
    dnum = [_group_sum(dy * x, groups), _group_sum(dy, groups)]
    dden = []
    for i in range(denominator.shape[1] // 2):
        c, d = numerator[:, 2 + 2 * i], numerator[:, 3 + 2 * i]
        e, f = denominator[:, 2 * i], denominator[:, 2 * i + 1]
        u = x - e
        r = 1.0 / (tf.square(u) + tf.square(f) + EPS)
        q = (c * x + d) * r
        gr = dy * r
        gqr = gr * q
        dx += gr * c - 2.0 * gqr * u
        dnum += [_group_sum(gr * x, groups), _group_sum(gr, groups)]
        dden += [2.0 * _group_sum(gqr * u, groups), -2.0 * f * _group_sum(gqr, groups)]
    return dx, tf.stack(dnum, axis=1), tf.stack(dden, axis=1)


@tf.custom_gradient
def _era_plain(x, numerator, denominator):
    def grad(dy):
        return plain_backward(dy, x, numerator, denominator)
    return era_formula(x, numerator, denominator), grad


@tf.custom_gradient
def _era_fused(x, numerator, denominator):
    ops = kernel.load()

    def grad(dy):
        return ops.era_backward(dy, x, numerator, denominator, eps=EPS)
    return ops.era_forward(x, numerator, denominator, eps=EPS), grad


@contextlib.contextmanager
def force_plain():
    """Within this block, path="auto" uses the plain-TF path (in every thread)."""
    previous = _forced["plain"]
    _forced["plain"] = True
    try:
        yield
    finally:
        _forced["plain"] = previous


def _runs_on_cpu(x):
    """Whether x's ops will run on a CPU: its device when known, else no accelerator present."""
    if x.device:
        return tf.DeviceSpec.from_string(x.device).device_type in (None, "CPU")
    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def use_fused(x):
    """Whether path="auto" takes the fused kernel for x: kernel built and loadable, not forced
    plain, not inside an XLA (jit_compile) function (XLA cannot compile custom ops), on CPU."""
    env = os.environ.get(ENV_PATH, "auto")
    if env not in ("auto", "plain"):
        raise ValueError(f"{ENV_PATH}={env!r} is not understood; set it to plain or auto (or "
                         "unset it)")
    if _forced["plain"] or env == "plain":
        return False
    if control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
        return False
    return _runs_on_cpu(x) and kernel.load() is not None


def _check_params(x, numerator, denominator):
    num, den = numerator.shape, denominator.shape
    if (num.rank != 2 or den.rank != 2 or den[1] is None or den[1] < 2 or den[1] % 2
            or num[1] != den[1] + 2 or num[0] != den[0]):
        raise ValueError(f"ERA parameters must be numerator (G, 2n + 2) and denominator (G, 2n), "
                         f"got {num} and {den}")
    channels = x.shape[-1] if x.shape.rank else 1
    if channels is not None and num[0] not in (1, channels):
        raise ValueError(f"ERA has {num[0]} parameter groups but the input's last axis has "
                         f"{channels} channels; use one group (sharing='layer') or one per "
                         "channel (sharing='channel')")


def era_activation(x, numerator, denominator, path="auto"):
    """sigma(x) in float32 with the memory-light custom gradient.

    path: "auto" (fused kernel when `use_fused(x)`, else plain), "fused" (error if the kernel is
    not built) or "plain".
    """
    if path not in PATHS:
        raise ValueError(f"unknown ERA path {path!r}; choose one of {', '.join(PATHS)}")
    x, numerator, denominator = (tf.cast(t, tf.float32) for t in (x, numerator, denominator))
    _check_params(x, numerator, denominator)
    if path == "fused" and kernel.load() is None:
        raise ValueError(f"ERA fused kernel requested but {kernel.LIBRARY} is not loadable; "
                         "build it with `make kernels`")
    if path == "fused" or (path == "auto" and use_fused(x)):
        return _era_fused(x, numerator, denominator)
    return _era_plain(x, numerator, denominator)
