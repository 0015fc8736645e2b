"""Plot a training run's validation curve (MPJPE / PA-MPJPE against steps) to a PNG.

    python tools/plot_training.py runs/long --out docs/figures/long_run.png [--eval FILE.json]
    python tools/plot_training.py runs/long_cont --before pretrained/mixer_64_synth --out F.png

Reads the run's TensorBoard scalars (eval/mpjpe, eval/pa_mpjpe, and train/loss/* on a second
panel) and, when an eval.h36m JSON with a mean_pose baseline is given (default: the workdir's
eval/synth_p1.json if present), draws the baseline as horizontal lines, with 0.8x and 0.5x of
its PA-MPJPE, the bars docs/pose_results.md measures against. `--before WORKDIR`: the run this
one continued (train.init_from): its curves come first and this run's steps follow its last.
`--compare WORKDIR` (repeatable): another run's validation curves, dashed, on the same axes
(e.g. the previous recipe's run against this one).

    python tools/plot_training.py runs/long3 --compare runs/long --out docs/figures/F.png
"""
import argparse
import collections
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.util import event_pb2  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pose_era import io  # noqa: E402


def scalars(workdir):
    """dict tag -> sorted [(step, value)] from WORKDIR/tb."""
    values = collections.defaultdict(dict)
    for path in sorted(Path(workdir, "tb").glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name not in ("scalars", ""):
                    continue  # images (val/prediction) and other plugins' tensors
                value = float(tf.make_ndarray(v.tensor)) if v.HasField("tensor") else v.simple_value
                values[v.tag][event.step] = value
    return {tag: sorted(points.items()) for tag, points in values.items()}


def _joined(before, after):
    """Curves of `before` followed by those of `after`, its steps shifted past before's last."""
    shift = max(step for points in before.values() for step, _ in points)
    out = {tag: list(points) for tag, points in before.items()}
    for tag, points in after.items():
        out.setdefault(tag, []).extend((step + shift, value) for step, value in points)
    return out, shift


def eval_scalars(workdir):
    """scalars(workdir), or ValueError when the run has no validation curve to draw."""
    curves = scalars(workdir)
    if "eval/pa_mpjpe" not in curves:
        raise ValueError(f"{workdir}/tb has no eval/pa_mpjpe scalars: was train.eval_every 0?")
    return curves


def plot(workdir, out, eval_json=None, before=None, compare=()):
    """Writes the PNG; returns (its path, the labels of the validation panel's lines)."""
    curves = eval_scalars(workdir)
    others = {str(other): eval_scalars(other) for other in compare}
    shift = None
    if before:
        curves, shift = _joined(scalars(before), curves)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    for tag, style in (("eval/mpjpe", "o-C0"), ("eval/pa_mpjpe", "o-C1")):
        steps, values = zip(*curves[tag])
        top.plot(steps, values, style, label=f"model {tag[5:].upper().replace('_', '-')}")
        for name, other in others.items():
            steps, values = zip(*other[tag])
            top.plot(steps, values, style[-2:], ls="--", marker=".", lw=1, alpha=0.6,
                     label=f"{name} {tag[5:].upper().replace('_', '-')}")
    if eval_json and Path(eval_json).is_file():
        base = json.loads(Path(eval_json).read_text())["baselines"]["mean_pose"]
        top.axhline(base["mpjpe"], color="C0", ls="--", label="mean body MPJPE")
        top.axhline(base["pa_mpjpe"], color="C1", ls="--", label="mean body PA-MPJPE")
        for f in (0.8, 0.5):
            top.axhline(f * base["pa_mpjpe"], color="C1", ls=":", lw=1,
                        label=f"{f} x mean body PA-MPJPE")
    if shift is not None:
        for axis in (top, bottom):
            axis.axvline(shift, color="grey", lw=1, ls="-.")
        top.text(shift, top.get_ylim()[0], f" continued from {before}", fontsize=7, va="bottom")
    top.set_ylabel("mm (validation)")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    for tag, points in sorted(curves.items()):
        if tag.startswith("train/loss/"):
            steps, values = zip(*points)
            bottom.plot(steps, values, label=tag[11:], lw=1)
    bottom.set_yscale("log")
    bottom.set_xlabel("training step")
    bottom.set_ylabel("training loss term")
    if any(tag.startswith("train/loss/") for tag in curves):
        bottom.legend(fontsize=8, ncol=3)
    bottom.grid(alpha=0.3)
    fig.suptitle(str(workdir) if before is None else f"{before} -> {workdir}")
    fig.tight_layout()
    labels = top.get_legend_handles_labels()[1]
    try:
        return io.atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=100)), labels
    finally:
        plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--eval", help="eval.h36m JSON with a mean_pose baseline "
                                       "(default: WORKDIR/eval/synth_p1.json)")
    parser.add_argument("--before", help="the workdir this run continued (train.init_from)")
    parser.add_argument("--compare", action="append", default=[],
                        help="another run whose validation curves to draw dashed (repeatable)")
    args = parser.parse_args(argv)
    try:
        path, _ = plot(args.workdir, args.out, args.eval or Path(args.workdir, "eval",
                                                                  "synth_p1.json"),
                       args.before, args.compare)
    except (ValueError, OSError) as err:
        print(f"plot_training: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
