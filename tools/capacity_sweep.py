"""Does ERA help more as the network narrows? The digits FCN and CNN swept down in width.

The ERA supplement says rational activations help most where a network lacks capacity for its
task (issue 20, item 7); at full width the digits table is within noise. This trains
configs/digits_fcn.py and configs/digits_cnn.py at width multipliers (`model.width_scale`) with
relu, gelu, swish and ERA swish-init degree 2 / 4 (era2, era4: one parameter set per layer),
several seeds, one run after another in this process through the one driver
(tools/classification_table.run_one), and reports per cell the test error's mean ± sample std,
ERA minus the best fixed activation with a 95 % Welch interval, and a plot.

    python tools/capacity_sweep.py --models fcn,cnn --widths 1/32,1/16,1/8,1/4,1/2,1 \\
        --activations relu,gelu,swish,era2,era4 --seeds 0,1,2 \\
        [--out docs/results/capacity_sweep.json] [--figure docs/figures/capacity_sweep.png]
    python tools/capacity_sweep.py --table1 [--clip 1.0] [--widths 1] [--seeds 0,1,2]
        # the supplement's Table 1 on digits: ERA random vs swish init, without and with
        # gradient clipping (optimizer.clip_norm 0 vs --clip), degree 2 and 4
    python tools/capacity_sweep.py --report     # the statistics and the plot of --out only
    python tools/capacity_sweep.py ... --set train.steps=20   # overrides for every run

Resumable: rows already in --out (same model, width, activation, init, clip, seed, epochs and
--set) are kept and skipped, and each finished run's row is written at once (atomically); a run
cut off half-way starts again. A run the driver stops (non-finite loss, loss spike, exploding
weights) is a row with diverged=true and no accuracy. The swish-init, unclipped width-1 ERA runs
are shared by both modes. Protocol and costs: docs/capacity_sweep.md.
"""
import argparse
import json
import socket
import sys
import tempfile
import time
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pose_era import io  # noqa: E402
from tools.paper_claims import ACTIVATIONS, best_fixed, mean_std, welch_interval  # noqa: E402
from tools.paper_sweep import comma_list, load_rows  # noqa: E402

MODELS = {"fcn": "digits_fcn", "cnn": "digits_cnn"}
ERAS = {"era2": 2, "era4": 4}
INITS = ("random", "swish")
# What makes two runs the same run (resume) and two rows the same protocol (pooling).
KEY = ("model", "width_scale", "activation", "init", "clip_norm", "seed", "epochs", "set")
PROTOCOL = ("epochs", "set")
# Keys the tool sets per run (overrides()); a --set of one would be silently overwritten.
RUN_KEYS = ("model.width_scale", "optimizer.clip_norm", "train.seed", "model.activation",
            "model.era.degree", "model.era.init")


def _widths(text):
    """'1/32,1/2,1' -> [0.03125, 0.5, 1.0]."""
    widths = []
    for item in comma_list(str)(text):
        try:
            value = Fraction(item)
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f"{item!r}: give widths as fractions, e.g. 1/32,1")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{item!r}: a width must be > 0")
        widths.append(float(value))
    return widths


def width_label(scale):
    """0.03125 -> '1/32' (tables, plot ticks)."""
    return str(Fraction(scale).limit_denominator(1024))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--models", type=comma_list(str, tuple(MODELS)), default=list(MODELS))
    p.add_argument("--widths", type=_widths,
                   help="width multipliers (default 1/32,1/16,1/8,1/4,1/2,1; --table1: 1)")
    p.add_argument("--activations", type=comma_list(str, ACTIVATIONS),
                   help=f"default {','.join(ACTIVATIONS)}; --table1: era2,era4")
    p.add_argument("--seeds", type=comma_list(int), default=[0, 1, 2])
    p.add_argument("--table1", action="store_true",
                   help="the supplement's Table 1: ERA random vs swish init, clip 0 vs --clip")
    p.add_argument("--clip", type=float, default=1.0, help="--table1's clip_norm (default 1.0)")
    p.add_argument("--report", action="store_true", help="no training: statistics and plot")
    p.add_argument("--out", default="docs/results/capacity_sweep.json")
    p.add_argument("--figure", default="docs/figures/capacity_sweep.png")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides for every run (recorded in each row)")
    args = p.parse_args(argv)
    if args.widths is None:
        args.widths = [1.0] if args.table1 else _widths("1/32,1/16,1/8,1/4,1/2,1")
    if args.activations is None:
        args.activations = list(ERAS) if args.table1 else list(ACTIVATIONS)
    if args.table1 and not set(args.activations) <= set(ERAS):
        p.error(f"--table1 compares ERA inits: --activations must be among {', '.join(ERAS)}")
    if args.clip <= 0:
        p.error("--clip must be > 0 (the clipped arm of --table1)")
    taken = [item for item in args.set if item.partition("=")[0] in RUN_KEYS]
    if taken:
        p.error(f"--set {taken[0]}: the tool sets this key per run; use --widths, "
                "--activations, --seeds, --table1 or --clip")
    return args


def plan(args):
    """Every run the arguments ask for, as {model, width_scale, activation, init, clip_norm,
    seed}: the sweep (swish-init ERA, no clipping) or --table1 (ERA inits x clipping)."""
    arms = ([(a, i, c) for a in args.activations for i in INITS for c in (0.0, args.clip)]
            if args.table1 else
            [(a, "swish" if a in ERAS else None, 0.0) for a in args.activations])
    return [dict(model=m, width_scale=w, activation=a, init=i, clip_norm=c, seed=s)
            for m in args.models for w in args.widths for a, i, c in arms for s in args.seeds]


def overrides(run, extra):
    """The --set strings that make `run` out of its digits config."""
    out = [f"model.width_scale={run['width_scale']!r}", f"optimizer.clip_norm={run['clip_norm']!r}",
           f"train.seed={run['seed']}"]
    if run["activation"] in ERAS:
        out += ["model.activation=era", f"model.era.degree={ERAS[run['activation']]}",
                f"model.era.init={run['init']}"]
    else:
        out.append(f"model.activation={run['activation']}")
    return [*extra, *out]


def key(row):
    return tuple(json.dumps(row[k]) for k in KEY)


# Statistics: pure functions of rows (tested on made-up rows, tests/test_capacity_sweep.py).

def pooled(rows):
    """Per model, the rows of its most common protocol (epochs, --set): runs of different
    lengths or overrides are never averaged together."""
    by_model = defaultdict(list)
    for r in rows:
        by_model[r["model"]].append(r)
    out = []
    for model_rows in by_model.values():
        protocols = Counter(json.dumps([r[k] for k in PROTOCOL]) for r in model_rows)
        chosen = protocols.most_common(1)[0][0]
        out += [r for r in model_rows if json.dumps([r[k] for k in PROTOCOL]) == chosen]
    return out


def _in_order(groups):
    """Cells sorted as MODELS lists the models (FCN first), then by width."""
    return sorted(groups.items(), key=lambda item: (list(MODELS).index(item[0][0]), item[0][1:]))


def _entry(rows):
    """{"runs": finished rows with "error" (test error, %), "diverged": count}."""
    return {"runs": [{**r, "error": 100.0 * (1.0 - r["accuracy"])} for r in rows
                     if not r["diverged"]],
            "diverged": sum(bool(r["diverged"]) for r in rows)}


def sweep_grid(rows):
    """{(model, width_scale): {activation: entry}} of the sweep's rows (no clipping, ERA
    swish-init)."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["clip_norm"] == 0 and r["init"] in (None, "swish"):
            groups[(r["model"], r["width_scale"])][r["activation"]].append(r)
    return {cell: {a: _entry(acts[a]) for a in ACTIVATIONS}
            for cell, acts in _in_order(groups)}


def table1_grid(rows):
    """(clip, {(model, width_scale, activation): {(init, clipped): entry}}) of the ERA rows;
    the clipped arm is the most common clip_norm > 0 (rows of another one are left out)."""
    era_rows = [r for r in rows if r["activation"] in ERAS]
    clips = Counter(r["clip_norm"] for r in era_rows if r["clip_norm"] > 0)
    clip = clips.most_common(1)[0][0] if clips else None
    groups = defaultdict(lambda: defaultdict(list))
    for r in era_rows:
        if r["clip_norm"] in (0, clip):
            cell = (r["model"], r["width_scale"], r["activation"])
            groups[cell][(r["init"], r["clip_norm"] > 0)].append(r)
    arms = [(i, c) for i in INITS for c in (False, True)]
    return clip, {cell: {arm: _entry(found[arm]) for arm in arms}
                  for cell, found in _in_order(groups)}


def cell_text(entry):
    """'mean ± std (n)' of the test error in %, plus the diverged runs."""
    m, s, n = mean_std(entry["runs"], "error")
    text = "–" if m is None else f"{m:.2f}" + ("" if np.isnan(s) else f" ± {s:.2f}") + f" ({n})"
    if entry["diverged"]:
        text += f", {entry['diverged']} diverged"
    return text


def difference_text(a, b):
    """mean(a) - mean(b) of the test error with the 95 % Welch interval, or '–'."""
    interval = welch_interval([r["error"] for r in a["runs"]], [r["error"] for r in b["runs"]])
    return "–" if interval is None else "{:+.2f} [{:+.2f}, {:+.2f}]".format(*interval)


def sweep_tables(grid):
    """Markdown: test error per cell, then ERA minus the best fixed activation per width."""
    lines = [f"| model | width | {' | '.join(ACTIVATIONS)} |",
             "|---|---|" + "---|" * len(ACTIVATIONS)]
    for (model, scale), acts in grid.items():
        lines.append(f"| {model} | {width_label(scale)} | "
                     + " | ".join(cell_text(acts[a]) for a in ACTIVATIONS) + " |")
    lines += ["", "| model | width | best fixed | era2 − best (95 % Welch) | era4 − best |",
              "|---|---|---|---|---|"]
    for (model, scale), acts in grid.items():
        best = best_fixed(acts, "error")
        if best is not None:
            lines.append(f"| {model} | {width_label(scale)} | {best} | "
                         f"{difference_text(acts['era2'], acts[best])} | "
                         f"{difference_text(acts['era4'], acts[best])} |")
    return "\n".join(lines)


def table1_table(clip, grid):
    """Markdown in the supplement's Table 1 layout, with the two effects and their intervals."""
    lines = [f"| model | width | ERA | random | random, clip {clip:g} | swish | swish, clip "
             f"{clip:g} | swish − random (no clip) | clip − no clip (random) |", "|---" * 9 + "|"]
    for (model, scale, activation), arms in grid.items():
        cells = [cell_text(arms[(i, c)]) for i in INITS for c in (False, True)]
        lines.append(f"| {model} | {width_label(scale)} | {activation} | {' | '.join(cells)} | "
                     f"{difference_text(arms[('swish', False)], arms[('random', False)])} | "
                     f"{difference_text(arms[('random', True)], arms[('random', False)])} |")
    return "\n".join(lines)


def figure(grid, path):
    """Test error against width (log x and y: x1 errors are ~10x smaller than x1/32's), a line
    per activation, error bars of one std, a panel per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
    models = [m for m in MODELS if any(m == model for model, _ in grid)]
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        scales = sorted(s for m, s in grid if m == model)
        for a in ACTIVATIONS:
            points = [(s, *mean_std(grid[(model, s)][a]["runs"], "error")) for s in scales]
            points = [(s, m, 0.0 if np.isnan(sd) else sd) for s, m, sd, _ in points
                      if m is not None]
            if points:
                xs, ms, sds = zip(*points)
                ax.errorbar(xs, ms, yerr=sds, marker="o", capsize=3, label=a,
                            linestyle="-" if a in ERAS else "--")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        for axis_format in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis_format(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_xticks(scales, [width_label(s) for s in scales])
        ax.set_xlabel(f"{model.upper()} width multiplier (model.width_scale)")
        ax.set_ylabel("digits test error (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Capacity sweep on digits (tools/capacity_sweep.py): mean ± std over seeds")
    fig.tight_layout()
    try:
        return io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


def report(rows, figure_path):
    """Prints both tables (those with rows) and writes the sweep's figure."""
    kept = pooled(rows)
    if len(kept) < len(rows):
        print(f"{len(rows) - len(kept)} rows of other protocols (epochs, --set) left out")
    rows = kept
    for model in [m for m in MODELS if any(r["model"] == m for r in rows)]:
        r0 = next(r for r in rows if r["model"] == model)
        print(f"{model}: {sum(r['model'] == model for r in rows)} runs, {r0['epochs']} epochs, "
              f"--set {' '.join(r0['set']) or '(none)'}")
    grid = sweep_grid(rows)
    if grid:
        print(f"\ndigits test error (%), mean ± sample std (runs):\n\n{sweep_tables(grid)}\n")
        print(f"wrote {figure(grid, figure_path)}")
    clip, table1 = table1_grid(rows)
    if clip is not None:
        print(f"\nTable 1 on digits, test error (%):\n\n{table1_table(clip, table1)}")


def main(argv=None):
    args = parse_args(argv)
    rows = load_rows(args.out, "capacity_sweep")
    if args.report:
        if not rows:
            print(f"capacity_sweep: no rows in {args.out}; run the sweep first", file=sys.stderr)
            return 2
        report(rows, args.figure)
        return 0
    from tools.classification_table import run_one
    from training import config as config_lib

    try:
        runs = []
        for run in plan(args):
            config = config_lib.apply_overrides(config_lib.load_config(MODELS[run["model"]]),
                                                overrides(run, args.set))
            runs.append({**run, "epochs": config.train.epochs, "set": args.set})
        done = {key(r) for r in rows}
        todo = [run for run in runs if key(run) not in done]
        print(f"capacity_sweep: {len(runs) - len(todo)} of {len(runs)} runs already in "
              f"{args.out}; {len(todo)} to go. {io.machine_line()}", flush=True)
        version = io.code_version(ignore=[args.out])
        for run in todo:
            with tempfile.TemporaryDirectory(prefix="capacity_") as tmp:
                record = run_one(MODELS[run["model"]], overrides(run, args.set),
                                 Path(tmp) / "run")
            row = {**run, **record, "diverged": record["accuracy"] is None,
                   "commit": version["commit"], "dirty": version["dirty"],
                   "machine": io.machine_line(), "host": socket.gethostname(),
                   "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            rows.append(row)
            io.write_json(args.out, {"what": "tools/capacity_sweep.py rows; "
                                     "docs/capacity_sweep.md", "rows": rows})
            shown = "DIVERGED" if row["diverged"] else f"{100 * row['accuracy']:.2f} %"
            print(f"{run['model']} x{width_label(run['width_scale'])} {run['activation']} "
                  f"init={run['init']} clip={run['clip_norm']:g} seed {run['seed']}: {shown} "
                  f"({row['params']:,} params, {row['steps']} steps, {row['seconds']:.0f} s)",
                  flush=True)
    except config_lib.ConfigError as err:
        print(f"capacity_sweep: {err}", file=sys.stderr)
        return 2
    report(rows, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
