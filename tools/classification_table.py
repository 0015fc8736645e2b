"""The digits activation ablation: FCN and CNN with each activation, mean ± std test accuracy.

Trains configs/digits_fcn.py and configs/digits_cnn.py through the one driver (training.driver.s
Trainer, in this process, one run after another) for relu, leaky_relu, swish, gelu, ERA swish-init
degree 2 and 4, and ERA random-init (degree 2), over several seeds, and prints a markdown table.

Usage (from the repository root):
  python tools/classification_table.py                 # full: 3 seeds, the configs' epochs
  python tools/classification_table.py --quick         # make demo: 2 seeds, :quick epochs
  python tools/classification_table.py --seeds 5 --workdir runs/table --out table.md
  python tools/classification_table.py --set train.jit_compile=true   # overrides for every run

With --workdir the runs are kept and a second call resumes (finished runs are read back).
A run that stops on a non-finite loss counts as diverged and is reported in the table.
"""
import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from training import config as config_lib  # noqa: E402
from training import driver as train  # noqa: E402

MODELS = {"fcn": "digits_fcn", "cnn": "digits_cnn"}
VARIANTS = {
    "relu": ["model.activation=relu"],
    "leaky_relu": ["model.activation=leaky_relu"],
    "swish": ["model.activation=swish"],
    "gelu": ["model.activation=gelu"],
    "era swish deg 2": ["model.activation=era", "model.era.init=swish", "model.era.degree=2"],
    "era swish deg 4": ["model.activation=era", "model.era.init=swish", "model.era.degree=4"],
    "era random deg 2": ["model.activation=era", "model.era.init=random", "model.era.degree=2"],
}


def run_one(spec, overrides, workdir):
    """Trains one config through the driver, or reads back the finished run in `workdir`.

    Returns {"accuracy": test accuracy (None: diverged), "seconds", "steps" (reached),
    "params", "diverged_because"}: a run stopped by the driver's loss or weight guard is a
    result (diverged), not an error, so a sweep records it and goes on.
    """
    done = workdir / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    config = config_lib.apply_overrides(config_lib.load_config(spec), overrides)
    accuracy = because = None
    with open(workdir / "run.log", "a") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        trainer = train.Trainer(config, workdir)
        try:
            trainer.fit()
            accuracy = json.loads((workdir / "eval" / "train_eval.json").read_text())["accuracy"]
        except train.NonFiniteLossError as err:
            because = str(err)
            print(f"diverged: {err}")
    record = {"accuracy": accuracy, "seconds": time.time() - started,
              "steps": int(trainer.step.numpy()), "params": trainer.model.count_params(),
              "diverged_because": because}
    keras.backend.clear_session()
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(done)
    return record


def cell(accuracies):
    """'mean ± std' in percent (sample std over seeds), plus how many runs diverged."""
    finite = [100.0 * a for a in accuracies if a is not None]
    text = "diverged" if not finite else f"{statistics.mean(finite):.2f}"
    if len(finite) > 1:
        text += f" ± {statistics.stdev(finite):.2f}"
    failed = len(accuracies) - len(finite)
    if failed and finite:
        text += f" ({failed}/{len(accuracies)} diverged)"
    return text


def format_table(results, seeds, seconds):
    """results[(model, variant)] = list of accuracies -> markdown table."""
    header = "| activation | " + " | ".join(f"{m.upper()} test acc. (%)" for m in MODELS) + " |"
    lines = [header, "|---" * (len(MODELS) + 1) + "|"]
    for variant in VARIANTS:
        lines.append(f"| {variant} | " + " | ".join(cell(results[(m, variant)]) for m in MODELS)
                     + " |")
    mean_s = {m: statistics.mean(seconds[m]) for m in MODELS}
    lines.append("")
    lines.append(f"mean ± sample std over seeds {', '.join(map(str, seeds))}; seconds per run: "
                 + ", ".join(f"{m.upper()} {s:.0f}" for m, s in mean_s.items()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="the configs' :quick epochs and 2 seeds (a few minutes)")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 3, quick 2)")
    parser.add_argument("--workdir", help="keep runs here and resume (default: a temp dir)")
    parser.add_argument("--out", help="also write the table to this markdown file")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run, e.g. train.jit_compile=true")
    args = parser.parse_args(argv)
    # Dozens of short runs in one process make TF warn about retracing evaluation; not a problem.
    tf.get_logger().setLevel("ERROR")
    seeds = list(range(args.seeds or (2 if args.quick else 3)))
    if not seeds:
        print("error: --seeds must be at least 1", file=sys.stderr)
        return 2
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="cls_table_"))
    results = {(m, v): [] for m in MODELS for v in VARIANTS}
    seconds = {m: [] for m in MODELS}
    try:
        for model, config in MODELS.items():
            spec = config + (":quick" if args.quick else "")
            for variant, overrides in VARIANTS.items():
                for seed in seeds:
                    workdir = root / model / variant.replace(" ", "_") / f"seed{seed}"
                    record = run_one(spec, [*args.set, *overrides, f"train.seed={seed}"],
                                     workdir)
                    acc, secs = record["accuracy"], record["seconds"]
                    results[(model, variant)].append(acc)
                    seconds[model].append(secs)
                    shown = "diverged" if acc is None else f"{100 * acc:.2f} %"
                    print(f"{model} {variant} seed {seed}: {shown} ({secs:.0f} s)", flush=True)
    except config_lib.ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    table = format_table(results, seeds, seconds)
    print(table)
    if args.out:
        out = Path(args.out)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(table + "\n")
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
