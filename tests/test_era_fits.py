"""ERA's initial fits: the committed table (fits.json) and a fresh re-fit meet the issue's
max-error bounds on [-3, 3], degree 4 is never worse than degree 2, poles stay off the real axis
and coefficients stay bounded. Errors are recomputed here with an independent float64 formula."""
import json
import math

import numpy as np
import pytest

from pose_era.era import fitting
from pose_era.era.ops import EPS

THRESHOLDS = {  # issue 2: the reference's degree-2 errors; degree-4 targets
    2: {"relu": 0.124, "leaky_relu": 0.099, "swish": 0.0062, "gelu": 0.020, "gelu_tanh": 0.020},
    4: {"relu": 0.04, "leaky_relu": 0.03, "swish": 1e-3, "gelu": 0.005, "gelu_tanh": 0.005},
}
X = np.linspace(-3.0, 3.0, 100001)
TARGETS = {
    "relu": np.maximum(X, 0.0),
    "leaky_relu": np.where(X > 0, X, 0.2 * X),
    "swish": X / (1.0 + np.exp(-X)),
    "gelu": np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in X]),
    "gelu_tanh": 0.5 * X * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (X + 0.044715 * X ** 3))),
}


def max_error(target, numerator, denominator):
    y = numerator[0] * X + numerator[1]
    for i in range(len(denominator) // 2):
        y = y + (numerator[2 + 2 * i] * X + numerator[3 + 2 * i]) / (
            (X - denominator[2 * i]) ** 2 + denominator[2 * i + 1] ** 2 + EPS)
    return float(np.max(np.abs(y - TARGETS[target])))


def check_well_posed(entry):
    num, den = np.asarray(entry["numerator"]), np.asarray(entry["denominator"])
    assert np.all(np.abs(den[1::2]) >= fitting.F_MIN), entry["target"]
    assert np.all(np.abs(num) <= fitting.COEF_BOUND + 1e-9), entry["target"]
    assert np.all(np.abs(den[0::2]) <= 9.0 + 1e-9), entry["target"]


def test_table_meets_bounds_and_degree_never_hurts():
    table = json.loads(fitting.TABLE.read_text())
    assert table["eps"] == EPS
    entries = {(e["target"], e["degree"]): e for e in table["fits"]
               if e["fit_range"] == [-3.0, 3.0]}
    for target in TARGETS:
        errors = []
        for degree in sorted(d for t, d in entries if t == target):
            entry = entries[(target, degree)]
            err = max_error(target, entry["numerator"], entry["denominator"])
            assert err == pytest.approx(entry["max_error"], rel=1e-3, abs=1e-9)
            if degree in THRESHOLDS:
                assert err <= THRESHOLDS[degree][target], (target, degree, err)
            check_well_posed(entry)
            errors.append(err)
        assert len(errors) >= 2 and errors == sorted(errors, reverse=True), (target, errors)


@pytest.mark.parametrize("target", ["relu", "leaky_relu", "swish", "gelu"])
def test_refit_with_a_small_budget_meets_the_bounds(target):
    low = fitting.fit(target, 2, points=801, starts=3, lawson_steps=6)
    high = fitting.fit(target, 4, points=801, starts=3, lawson_steps=6, lower=low)
    errors = [max_error(target, r["numerator"], r["denominator"]) for r in (low, high)]
    assert errors[0] <= THRESHOLDS[2][target] and errors[1] <= THRESHOLDS[4][target], errors
    assert errors[1] <= errors[0]
    check_well_posed(low)
    check_well_posed(high)


def test_untabulated_settings_are_fitted_on_demand():
    num, den = fitting.initial_parameters("leaky_relu", 2, fit_range=(-2.0, 2.0), slope=0.1)
    x = np.linspace(-2, 2, 4001)
    err = np.max(np.abs(fitting.rational(num, den, x) - np.where(x > 0, x, 0.1 * x)))
    assert err < 0.05 and np.all(den[1::2] >= fitting.F_MIN)


def test_bad_fit_requests_are_clear_errors():
    with pytest.raises(ValueError, match="unknown ERA fit target 'tanh'"):
        fitting.initial_parameters("tanh", 2)
    with pytest.raises(ValueError, match="even integer >= 2"):
        fitting.initial_parameters("relu", 5)
    with pytest.raises(ValueError, match="low < high"):
        fitting.initial_parameters("relu", 2, fit_range=(1.0, -1.0))
