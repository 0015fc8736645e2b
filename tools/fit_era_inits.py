"""Regenerate pose_era/era/fits.json, ERA's table of initial fits (see pose_era/era/fitting.py).

Usage: python tools/fit_era_inits.py [--degrees 2 4 6 8] [--out PATH]

Fits every target (relu, leaky_relu with slope 0.2, swish, gelu, gelu_tanh) at every degree on
[-3, 3] and prints the max-error table (markdown). Takes a few minutes on 2 cores.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pose_era import io  # noqa: E402
from pose_era.era import fitting  # noqa: E402
from pose_era.era.ops import EPS  # noqa: E402

FIT_RANGE = (-3.0, 3.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degrees", type=int, nargs="+", default=[2, 4, 6, 8])
    parser.add_argument("--out", type=Path, default=fitting.TABLE)
    args = parser.parse_args(argv)
    try:
        for degree in args.degrees:
            fitting.check_degree(degree)
    except ValueError as err:
        print(f"fit_era_inits: {err}", file=sys.stderr)
        return 2

    fits = []
    print("| target | degree | max error | plain least squares | seconds |")
    print("|---|---|---|---|---|")
    for target in fitting.TARGETS:
        lower = None
        for degree in range(2, max(args.degrees) + 1, 2):
            start = time.perf_counter()
            lower = fitting.fit(target, degree, FIT_RANGE, lower=lower)
            if degree in args.degrees:
                fits.append(lower)
                print(f"| {target} | {degree} | {lower['max_error']:.2e} | "
                      f"{lower['ls_max_error']:.2e} | {time.perf_counter() - start:.1f} |",
                      flush=True)
    table = {
        "about": "ERA initial fits; regenerate with `python tools/fit_era_inits.py`",
        "eps": EPS, "points": fitting.POINTS, "starts": fitting.STARTS,
        "lawson_steps": fitting.LAWSON_STEPS, "f_min": fitting.F_MIN,
        "coef_bound": fitting.COEF_BOUND, "fits": fits,
    }
    io.write_text(args.out, json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
