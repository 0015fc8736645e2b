"""Initial ERA parameters: fits of the rational function to a target activation.

The reference (martrim/ERA) runs one least-squares fit from an all-ones start; that converges for
degree 2 but stalls for degree 4 (relu, gelu) or runs off to huge coefficients. Here every fit is
a bounded, multi-start least-squares problem on an even grid over `fit_range`:
- bounds keep coefficients moderate (|a|, |b|, |c_i|, |d_i| <= COEF_BOUND), the poles off the
  real axis (F_MIN <= f_i <= range width) and their centres e_i within one range width of it;
- starts: all ones (the reference's), structured starts (poles at the centre, poles spread over the
  range), the degree-(2n - 2) fit with one new term, and seeded random starts;
- the best least-squares solution is then polished by a few Lawson steps (iteratively reweighted
  least squares, weights grown where the error is large), keeping the iterate with the smallest
  max error: plain least squares sits a hair above the reference's quoted max errors (its 0.0062,
  0.099 are rounded), the polish roughly halves them;
- a lower-degree fit padded with a zero term is always a candidate, so degree 2n is never worse
  than degree 2n - 2.
Fits for the common cases live in fits.json (regenerate with `python tools/fit_era_inits.py`);
other (degree, range, slope) combinations are fitted when first asked for and cached in memory.

The NumPy float64 formula here (for fitting and plotting) mirrors `ops.era_formula` (TF) and
includes the same EPS.
"""
import functools
import json
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.special import erf, expit

from pose_era.era.ops import EPS

TARGETS = ("relu", "leaky_relu", "swish", "gelu", "gelu_tanh")
INITS = (*TARGETS, "random")
F_MIN = 0.1
COEF_BOUND = 60.0  # degree-2 swish needs |d| = 53.6
TABLE = Path(__file__).with_name("fits.json")
# Budgets of the table (tools/fit_era_inits.py); tests re-fit with smaller ones.
POINTS, STARTS, LAWSON_STEPS = 2001, 12, 12
CHECK_POINTS = 100001


def target_function(name, slope=0.2):
    """The activation `name` as a float64 NumPy function (gelu = exact erf form)."""
    functions = {
        "relu": lambda x: np.maximum(x, 0.0),
        "leaky_relu": lambda x: np.where(x > 0, x, slope * x),
        "swish": lambda x: x * expit(x),
        "gelu": lambda x: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0))),
        "gelu_tanh": lambda x: 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi)
                                                         * (x + 0.044715 * x ** 3))),
    }
    if name not in functions:
        raise ValueError(f"unknown ERA fit target {name!r}; choose one of {', '.join(TARGETS)}")
    return functions[name]


def split(params, degree):
    """Flat parameter vector -> (numerator (degree + 2,), denominator (degree,))."""
    return params[:degree + 2], params[degree + 2:]


def _terms(numerator, denominator, x):
    """Per partial fraction i: (c_i, d_i, u = x - e_i, r = 1 / denominator, q = (c x + d) r)."""
    for i in range(len(denominator) // 2):
        c, d = numerator[2 + 2 * i], numerator[3 + 2 * i]
        u = x - denominator[2 * i]
        r = 1.0 / (u * u + denominator[2 * i + 1] ** 2 + EPS)
        yield c, d, u, r, (c * x + d) * r


def rational(numerator, denominator, x):
    """sigma(x) for one parameter set (float64 NumPy)."""
    y = numerator[0] * x + numerator[1]
    for _, _, _, _, q in _terms(numerator, denominator, x):
        y = y + q
    return y


def rational_dx(numerator, denominator, x):
    """d sigma / dx for one parameter set (float64 NumPy)."""
    dy = np.full_like(x, numerator[0], dtype=np.float64)
    for c, _, u, r, q in _terms(numerator, denominator, x):
        dy = dy + r * (c - 2.0 * u * q)
    return dy


def _jacobian(params, x, degree):
    numerator, denominator = split(params, degree)
    jac = np.empty((x.size, params.size))
    jac[:, 0], jac[:, 1] = x, 1.0
    for i, (_, _, u, r, q) in enumerate(_terms(numerator, denominator, x)):
        jac[:, 2 + 2 * i] = x * r
        jac[:, 3 + 2 * i] = r
        jac[:, degree + 2 + 2 * i] = 2.0 * u * q * r
        jac[:, degree + 3 + 2 * i] = -2.0 * denominator[2 * i + 1] * q * r
    return jac


def _bounds(degree, fit_range):
    lo_x, hi_x = fit_range
    span = hi_x - lo_x
    lower = np.full(2 * degree + 2, -COEF_BOUND)
    upper = np.full(2 * degree + 2, COEF_BOUND)
    lower[degree + 2::2], upper[degree + 2::2] = lo_x - span, hi_x + span   # e_i
    lower[degree + 3::2], upper[degree + 3::2] = F_MIN, span                # f_i
    return lower, upper


def _starts(degree, fit_range, lower_fit, count, rng):
    """Deterministic starting points, then seeded random ones up to `count`."""
    n, (lo_x, hi_x) = degree // 2, fit_range
    starts = [np.ones(2 * degree + 2)]
    centred = np.zeros(2 * degree + 2)
    centred[0], centred[3:degree + 2:2] = 0.5, 1.0
    centred[degree + 3::2] = np.geomspace(0.5, 3.0, n) * (hi_x - lo_x) / 6.0
    spread = centred.copy()
    spread[degree + 2::2] = np.linspace(lo_x, hi_x, n + 2)[1:-1]
    spread[degree + 3::2] = (hi_x - lo_x) / (n + 1)
    starts += [centred, spread]
    if lower_fit is not None:
        for e in np.linspace(lo_x, hi_x, 3):
            starts.append(_pad(lower_fit, degree, e, (hi_x - lo_x) / 6.0))
    while len(starts) < count:
        p = rng.normal(size=2 * degree + 2)
        p[degree + 2::2] = rng.uniform(lo_x, hi_x, n)
        p[degree + 3::2] = rng.uniform(0.3, 2.0, n)
        starts.append(p)
    return starts[:max(count, 1)]


def _pad(params, degree, e, f):
    """A degree-(degree - 2) parameter vector as degree `degree`: a new term with c = d = 0."""
    num, den = split(params, degree - 2)
    return np.concatenate([num, [0.0, 0.0], den, [e, f]])


def _least_squares(params, x, t, degree, bounds, weights=None, max_nfev=1000):
    sw = np.ones_like(x) if weights is None else np.sqrt(weights)

    def residual(p):
        return sw * (rational(*split(p, degree), x) - t)

    def jac(p):
        return sw[:, None] * _jacobian(p, x, degree)
    start = np.clip(params, bounds[0], bounds[1])
    return least_squares(residual, start, jac=jac, bounds=bounds, method="trf", x_scale="jac",
                         max_nfev=max_nfev, ftol=1e-12, xtol=1e-12, gtol=1e-12).x


def max_error(numerator, denominator, target, fit_range=(-3.0, 3.0), slope=0.2,
              points=CHECK_POINTS):
    """Max |sigma - target| on an even grid of `points` over fit_range."""
    x = np.linspace(*fit_range, points)
    return float(np.max(np.abs(rational(numerator, denominator, x)
                               - target_function(target, slope)(x))))


def fit(target, degree, fit_range=(-3.0, 3.0), slope=0.2, points=POINTS, starts=STARTS,
        lawson_steps=LAWSON_STEPS, seed=0, lower=None):
    """Fits sigma to `target` on fit_range; returns a dict with numerator, denominator (float64
    lists), max_error (on CHECK_POINTS points) and ls_max_error (before the Lawson polish).
    `lower`: the degree - 2 result, fitted here (same budgets) when not given."""
    from threadpoolctl import threadpool_limits  # multi-threaded BLAS is slower on tiny SVDs

    check_degree(degree)
    fn = target_function(target, slope)
    x = np.linspace(*fit_range, points)
    t = fn(x)
    with threadpool_limits(1):
        lower_fit = None
        if degree > 2:
            if lower is None:
                lower = fit(target, degree - 2, fit_range, slope, points, starts, lawson_steps,
                            seed)
            lower_fit = np.concatenate([lower["numerator"], lower["denominator"]])
        bounds = _bounds(degree, fit_range)
        rng = np.random.default_rng(seed)
        solutions = [_least_squares(p, x, t, degree, bounds)
                     for p in _starts(degree, fit_range, lower_fit, starts, rng)]
        costs = [np.sum((rational(*split(p, degree), x) - t) ** 2) for p in solutions]
        best = solutions[int(np.argmin(costs))]
        ls_best = best

        def grid_error(p):
            return np.max(np.abs(rational(*split(p, degree), x) - t))
        candidates = [best]
        weights = np.ones_like(x)
        for _ in range(lawson_steps):
            err = np.abs(rational(*split(best, degree), x) - t)
            weights = weights * err / err.max() + 1e-12
            weights /= weights.mean()
            best = _least_squares(best, x, t, degree, bounds, weights, max_nfev=200)
            candidates.append(best)
        if lower_fit is not None:
            candidates.append(_pad(lower_fit, degree, 0.0, 1.0))
        chosen = min(candidates, key=grid_error)
    numerator, denominator = split(chosen, degree)
    return {
        "target": target, "degree": degree, "fit_range": [float(v) for v in fit_range],
        "slope": float(slope) if target == "leaky_relu" else None,
        "numerator": numerator.tolist(), "denominator": denominator.tolist(),
        "max_error": max_error(numerator, denominator, target, fit_range, slope),
        "ls_max_error": max_error(*split(ls_best, degree), target, fit_range, slope),
    }


def check_degree(degree):
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 2 \
            or degree % 2:
        raise ValueError(f"ERA degree must be an even integer >= 2 (the denominator degree; 2 and "
                         f"4 are the paper's), got {degree!r}")


def _key(target, degree, fit_range, slope):
    return (target, int(degree), tuple(round(float(v), 9) for v in fit_range),
            round(float(slope), 9) if target == "leaky_relu" else None)


@functools.lru_cache(maxsize=1)
def load_table(path=TABLE):
    """fits.json as {key: entry}; empty when the file is absent."""
    if not Path(path).exists():
        return {}
    data = json.loads(Path(path).read_text())
    if data.get("eps") != EPS:
        raise ValueError(f"{path} was fitted with eps={data.get('eps')} but ERA uses eps={EPS}; "
                         "regenerate it with `python tools/fit_era_inits.py`")
    return {_key(e["target"], e["degree"], e["fit_range"], e["slope"] or 0.0): e
            for e in data["fits"]}


@functools.lru_cache(maxsize=None)
def _fit_cached(key):
    target, degree, fit_range, slope = key
    return fit(target, degree, fit_range, 0.2 if slope is None else slope)


def initial_parameters(target, degree, fit_range=(-3.0, 3.0), slope=0.2):
    """(numerator, denominator) float64 arrays fitting `target`: from fits.json when tabulated,
    else fitted now (seconds) and cached for the process."""
    check_degree(degree)
    target_function(target, slope)
    if fit_range[0] >= fit_range[1]:
        raise ValueError(f"fit_range must be (low, high) with low < high, got {fit_range}")
    key = _key(target, degree, fit_range, slope)
    entry = load_table().get(key) or _fit_cached(key)
    return np.asarray(entry["numerator"]), np.asarray(entry["denominator"])
