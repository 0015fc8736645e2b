"""The ERA supplement's Table 9 / Figure 9 on the synthetic benchmark: ERA against ReLU, GELU and
Swish in the pose head, across head kinds and widths, several seeds (training/paper_sweep.py).

    python tools/paper_sweep.py --heads transformer,mixer --widths 16,64,256 \\
        --activations relu,gelu,swish,era2,era4 --seeds 0,1,2 [--steps 3000] [--batch 64]
        [--out docs/results/paper_sweep.json] [--ckpt pretrained/mixer_64_synth]
        [--variant paper|cpu]

One process, resumable: rows already in --out (same cell, seed, backbone and protocol) are kept
and skipped; a run killed half-way resumes from its checkpoint under the cache; each finished
run's row is written to --out at once (atomically). A diverged run (non-finite loss, or a loss
5x its first logged value) is a row with diverged=true and no metrics, never dropped. The first
call caches the frozen backbone's features of the release's training and test images (~4 min on
2 cores, 2.7 GB under cache/paper_sweep/). --variant cpu trains the CPU recipe's head (keypoint
tokens and lifter) instead of the paper's, as a second row set (its own protocol, never pooled
with the paper's); its first call also caches the release's keypoint tokens of the same images.
docs/paper_claims.md has the protocol, costs and results.
"""
import argparse
import os
import socket
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def comma_list(kind, choices=None):
    """argparse type: a comma-separated list of `kind` (int or str), each in `choices`."""
    def parse(text):
        items = [t.strip() for t in text.split(",") if t.strip()]
        if kind is int:
            try:
                items = [int(t) for t in items]
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r}: give integers separated by commas")
        bad = [t for t in items if choices and t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"{text!r}: choose from {', '.join(choices)}" if choices else f"{text!r} is empty")
        return items
    return parse


def parse_args(argv=None):
    from training.paper_sweep import ACTIVATIONS, HEADS, VARIANTS, Protocol
    d = Protocol()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--heads", type=comma_list(str, HEADS), default=["transformer", "mixer"])
    p.add_argument("--widths", type=comma_list(int), default=[16, 64, 256])
    p.add_argument("--activations", type=comma_list(str, tuple(ACTIVATIONS)),
                   default=list(ACTIVATIONS))
    p.add_argument("--seeds", type=comma_list(int), default=[0, 1, 2])
    p.add_argument("--out", default="docs/results/paper_sweep.json")
    p.add_argument("--ckpt", default="pretrained/mixer_64_synth",
                   help="released pose workdir whose backbone, MarkerPoser and data are used")
    p.add_argument("--variant", choices=VARIANTS, default=d.variant,
                   help="paper: Table 8's head; cpu: with the CPU recipe's keypoint tokens and "
                        "lifter (a second row set)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--cache", default=str(ROOT / "cache" / "paper_sweep"),
                   help="where the feature cache and unfinished runs live")
    p.add_argument("--limit-train", type=int, default=0,
                   help="cache only the first N training images (tests, quick looks)")
    p.add_argument("--plot-era", metavar="DIR",
                   help="instead of training: plot the learned ERAs of the finished era2/era4 "
                        "runs of the given cells into DIR/<run>/ (pose_era.era.plot)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch < 1 or args.eval_every < 1 or args.lr <= 0 \
            or not 0 <= args.warmup < args.steps or min(args.widths) < 1:
        p.error("--steps, --batch, --eval-every and widths must be >= 1, --lr > 0, "
                "0 <= --warmup < --steps")
    return args


def load_rows(path, tool="paper_sweep"):
    """The rows of an existing sweep JSON ([] when there is none); a file that is not one
    stops `tool` with one line."""
    import json
    path = Path(path)
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())["rows"]
    except (ValueError, KeyError) as err:
        raise SystemExit(f"{tool}: {path} is not a sweep JSON ({err}); move it away or "
                         "give another --out")


def plot_era(args, sweep, cache, config, body, protocol, todo):
    """--plot-era: the learned ERAs of every finished ERA run among the chosen cells."""
    cells = [(h, w, a, s) for s in args.seeds for h in args.heads for w in args.widths
             for a in args.activations if a.startswith("era")]
    plotted = 0
    for head, width, activation, seed in cells:
        if (head, width, activation, seed) in todo:
            print(f"paper_sweep: {head}-{width} {activation} seed {seed} has no row yet; "
                  "skipped", file=sys.stderr)
            continue
        folder = sweep.run_dir(args.cache, cache.sha256, head, width, activation, seed, protocol)
        try:
            paths = sweep.plot_learned_era(cache, config, body, head, width, activation, folder,
                                           Path(args.plot_era) / folder.name, args.variant)
        except FileNotFoundError as err:
            print(f"paper_sweep: {err}", file=sys.stderr)
            continue
        plotted += len(paths)
        print("\n".join(map(str, paths)))
    print(f"paper_sweep: {plotted} ERA layer plot(s) written under {args.plot_era}")
    return 0 if plotted else 2


def main(argv=None):
    args = parse_args(argv)
    from pose_era import io
    from pose_era.body import body_model_of
    from training import checkpoints, paper_sweep as sweep

    try:
        config = sweep.release_config(args.ckpt)
    except (checkpoints.CheckpointError, FileNotFoundError) as err:
        print(f"paper_sweep: {err}", file=sys.stderr)
        return 2
    rows = load_rows(args.out)
    protocol = sweep.Protocol(steps=args.steps, batch=args.batch, lr=args.lr,
                              warmup=args.warmup, eval_every=min(args.eval_every, args.steps),
                              ckpt_every=min(500, args.steps), variant=args.variant)
    cache = sweep.FeatureCache.build(args.ckpt, args.cache, args.limit_train,
                                     progress=not args.no_progress)
    if args.variant == "cpu":
        try:
            cache.add_keypoint_tokens(progress=not args.no_progress)
        except ValueError as err:
            print(f"paper_sweep: {err}", file=sys.stderr)
            return 2
    body = body_model_of(config)
    evaluator = sweep.Evaluator(cache, config, body, args.variant)
    baseline = evaluator.mean_body()
    done = {sweep.row_key(r) for r in rows}
    cells = [(h, w, a, s) for s in args.seeds for h in args.heads for w in args.widths
             for a in args.activations]
    todo = [c for c in cells if sweep.run_key(*c, cache.sha256, protocol) not in done]
    print(f"paper_sweep: {len(cells) - len(todo)} of {len(cells)} runs already in {args.out}; "
          f"{len(todo)} to go. Backbone {cache.sha256[:16]} ({cache.meta['train']} train / "
          f"{cache.meta['test']} test images); mean body {baseline['mpjpe']:.1f} / "
          f"{baseline['pa_mpjpe']:.1f} / {baseline['mpvpe']:.1f} mm. {io.machine_line()}",
          flush=True)
    if args.plot_era:
        return plot_era(args, sweep, cache, config, body, protocol, todo)
    version = io.code_version(ignore=[args.out])
    for head, width, activation, seed in todo:
        run_dir = sweep.run_dir(args.cache, cache.sha256, head, width, activation, seed,
                                protocol)
        result = sweep.train_run(cache, config, body, evaluator, head, width, activation, seed,
                                 protocol, run_dir, progress=not args.no_progress)
        row = {"head": head, "width": width, "activation": activation, "seed": seed,
               **result, "backbone_sha256": cache.sha256, "ckpt": args.ckpt,
               "train_images": cache.meta["train"], "test_images": cache.meta["test"],
               "mean_body": baseline, "commit": version["commit"], "dirty": version["dirty"],
               "machine": io.machine_line(), "host": socket.gethostname(),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        rows.append(row)
        io.write_json(args.out, {"what": "tools/paper_sweep.py rows; docs/paper_claims.md",
                                 "rows": rows})
        status = "DIVERGED" if row["diverged"] else (
            f"{row['mpjpe']:.1f} / {row['pa_mpjpe']:.1f} / {row['mpvpe']:.1f} mm")
        print(f"{head}-{width} {activation} seed {seed}: {status} after {row['steps']} steps, "
              f"{row['seconds']:.0f} s", flush=True)
        sweep.finish_run(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
