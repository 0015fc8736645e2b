"""Activation ablation of the pose network on the synthetic benchmark, sized for a CPU.

    python tools/pose_ablation.py [--configs mixer_64:cpu,transformer_64:cpu]
        [--activations era2,era4,relu,gelu,swish] [--seeds 0,1] [--steps 150] [--batch 8]
        [--image_size 128] [--train 512] [--test 64] [--markerposer_steps 2000]
        [--root runs/ablation] [--set KEY=VALUE ...]

Every run goes through the user-facing commands, one process each, sequentially:
  1. once: a shared synthetic set, rendered at --image_size (tools/make_synth.py, seed 0) into
     cache/synth/ablation_<train>_<test>_<size>, so every run reads the same images;
  2. once: a MarkerPoser pre-trained for --markerposer_steps (tools/pretrain_markerposer.py),
     loaded by every run; fine-tuned with the rest as the configs do, or frozen with
     --set model.markerposer.trainable=false (what docs/pose_results.md uses, and why);
  3. per (config, activation, seed): python -m pose_era.train into
     ROOT/<config>/<activation>/seed<s> with the same steps, batch, size and data (only
     model.activation, model.era.degree and train.seed change; train.seed also sets the data
     order), then
     python -m eval.h36m --ckpt WORKDIR --baseline mean_pose (MPJPE / PA-MPJPE on the whole
     synthetic test split; the mean-pose row is the same for every run, shown once).
Resumable: a run whose WORKDIR/eval/synth_p1.json exists is skipped (a killed run resumes from
its last checkpoint). Each process's output goes to WORKDIR/{train,eval}.log. Prints a markdown
table (mean ± sample std over seeds) and writes ROOT/ablation.json.

The "longer CPU run" is the same tool with one activation and seed and more steps, e.g.
  python tools/pose_ablation.py --configs mixer_64:cpu --activations era2 --seeds 0 --steps 2000
      --image_size 160 --train 1024 --root runs/longer2000
      --set model.markerposer.trainable=false train.eval_every=250
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pose_era import io  # noqa: E402

# activation name in the table -> model overrides
ACTIVATIONS = {
    "era2": ["model.activation=era", "model.era.degree=2"],
    "era4": ["model.activation=era", "model.era.degree=4"],
    "relu": ["model.activation=relu"],
    "gelu": ["model.activation=gelu"],
    "swish": ["model.activation=swish"],
    "leaky_relu": ["model.activation=leaky_relu"],
}
EVAL_JSON = Path("eval") / "synth_p1.json"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--configs", default="mixer_64:cpu", help="comma-separated configs")
    p.add_argument("--activations", default="era2,era4,relu,gelu,swish",
                   help=f"comma-separated, from {', '.join(ACTIVATIONS)}")
    p.add_argument("--seeds", default="0,1", help="comma-separated train.seed values")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--train", type=int, default=512, help="synthetic training images")
    p.add_argument("--test", type=int, default=64, help="synthetic test images")
    p.add_argument("--markerposer_steps", type=int, default=2000)
    p.add_argument("--root", default="runs/ablation", help="folder of the run workdirs")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="extra overrides passed to every training run")
    args = p.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    args.activations = [a for a in args.activations.split(",") if a]
    unknown = [a for a in args.activations if a not in ACTIVATIONS]
    if unknown:
        p.error(f"unknown activation(s) {', '.join(unknown)}; choose from {', '.join(ACTIVATIONS)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if min(args.steps, args.batch, args.image_size, args.train, args.test,
           args.markerposer_steps) < 1 or not (args.configs and args.activations and args.seeds):
        p.error("sizes must be positive and configs, activations, seeds non-empty")
    return args


def run(cmd, log=None):
    """Runs `python CMD...` from the repo root; returns (exit status, seconds)."""
    print(f"$ python {shlex.join(cmd)}" + (f"  > {log}" if log else ""), flush=True)
    started = time.time()
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as out:
            rc = subprocess.run([sys.executable, *cmd], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT).returncode
    else:
        rc = subprocess.run([sys.executable, *cmd], cwd=ROOT).returncode
    return rc, time.time() - started


def prepare(args):
    """The shared synthetic set and MarkerPoser weights (made once); returns their paths."""
    data = f"cache/synth/ablation_{args.train}_{args.test}_{args.image_size}"
    if not (ROOT / data / "synth_test.npz").is_file():
        rc, _ = run(["tools/make_synth.py", "--out", data, "--train", str(args.train),
                     "--test", str(args.test), "--seed", "0", "--image-size",
                     str(args.image_size), "--no-progress"])
        if rc:
            sys.exit(f"error: making the synthetic set failed (exit {rc})")
    weights = f"cache/markerposer/ablation_m64_s{args.markerposer_steps}.npz"
    if not (ROOT / weights).is_file():
        rc, _ = run(["tools/pretrain_markerposer.py", "--out", weights,
                     "--steps", str(args.markerposer_steps)])
        if rc:
            sys.exit(f"error: MarkerPoser pre-training failed (exit {rc})")
    return data, weights


def one_run(args, config, activation, seed, data, weights):
    """Trains and evaluates one (config, activation, seed) unless its eval JSON exists;
    returns its record (or None when it failed)."""
    workdir = Path(args.root) / config.replace(":", "_") / activation / f"seed{seed}"
    record_path = ROOT / workdir / "ablation_run.json"
    if (ROOT / workdir / EVAL_JSON).is_file() and record_path.is_file():
        print(f"skip {workdir}: already evaluated", flush=True)
        return json.loads(record_path.read_text())
    overrides = [f"train.steps={args.steps}", f"train.batch_size={args.batch}",
                 f"data.image_size={args.image_size}", f"data.dir={data}",
                 f"model.markerposer.weights={weights}", f"train.seed={seed}",
                 "train.eval_every=0", "train.image_every=0",
                 *ACTIVATIONS[activation], *args.set]
    train_cmd = ["-m", "pose_era.train", "--config", config, "--workdir", str(workdir),
                 "--set", *overrides]
    eval_cmd = ["-m", "eval.h36m", "--ckpt", str(workdir), "--baseline", "mean_pose"]
    load_before, commit = os.getloadavg(), git_commit()
    rc, train_s = run(train_cmd, ROOT / workdir / "train.log")
    if rc:
        print(f"FAILED {workdir}: training exit {rc}, see {workdir}/train.log", flush=True)
        return None
    rc, eval_s = run(eval_cmd, ROOT / workdir / "eval.log")
    if rc:
        print(f"FAILED {workdir}: evaluation exit {rc}, see {workdir}/eval.log", flush=True)
        return None
    result = json.loads((ROOT / workdir / EVAL_JSON).read_text())
    record = {
        "config": config, "activation": activation, "seed": seed, "workdir": str(workdir),
        "mpjpe": result["mpjpe"], "pa_mpjpe": result["pa_mpjpe"], "mpvpe": result.get("mpvpe"),
        "count": result["count"], "step": result["checkpoint"]["step"],
        "baseline": result.get("baselines", {}).get("mean_pose"),
        "train_s": round(train_s, 1), "eval_s": round(eval_s, 1), "commit": commit,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "commands": [f"python {shlex.join(train_cmd)}", f"python {shlex.join(eval_cmd)}"],
    }
    io.write_json(record_path, record)
    print(f"{workdir}: MPJPE {record['mpjpe']:.1f} mm, PA-MPJPE {record['pa_mpjpe']:.1f} mm "
          f"(train {train_s:.0f} s, eval {eval_s:.0f} s)", flush=True)
    return record


def git_commit():
    """HEAD of the checkout when a run starts. Other work lands in the same checkout meanwhile
    (uncommitted edits included), so WORKDIR/config.json is the exact record of what ran."""
    return (io.code_version(ROOT)["commit"] or "unknown")[:7]


def mean_std(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return mean, std


def summarize(records, args):
    """Per (config, activation): n, mean and sample std of MPJPE and PA-MPJPE, per-seed values."""
    rows = []
    for config in args.configs:
        for activation in args.activations:
            group = [r for r in records if r["config"] == config
                     and r["activation"] == activation]
            if not group:
                continue
            row = {"config": config, "activation": activation, "n": len(group),
                   "seeds": [r["seed"] for r in group],
                   "train_s": statistics.fmean(r["train_s"] for r in group)}
            for m in ("mpjpe", "pa_mpjpe"):
                row[m] = [r[m] for r in group]
                row[f"{m}_mean"], row[f"{m}_std"] = mean_std(row[m])
            rows.append(row)
    return rows


def table(rows, baseline):
    fmt = lambda mean, std: f"{mean:.1f} ± {std:.1f}" if std == std else f"{mean:.1f}"
    out = ["| config | activation | seeds | MPJPE mm (mean ± std) | PA-MPJPE mm (mean ± std) | "
           "MPJPE per seed | train s/run |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['config']} | {r['activation']} | {r['n']} | "
                   f"{fmt(r['mpjpe_mean'], r['mpjpe_std'])} | "
                   f"{fmt(r['pa_mpjpe_mean'], r['pa_mpjpe_std'])} | "
                   f"{', '.join(f'{v:.1f}' for v in r['mpjpe'])} | {r['train_s']:.0f} |")
    if baseline:
        out.append(f"| mean-pose baseline | - | - | {baseline['mpjpe']:.1f} | "
                   f"{baseline['pa_mpjpe']:.1f} | - | - |")
    return "\n".join(out)


def main(argv=None):
    args = parse_args(argv)
    command = "python tools/pose_ablation.py " + shlex.join(sys.argv[1:] if argv is None
                                                            else argv)
    started, load_start = time.time(), os.getloadavg()
    data, weights = prepare(args)
    records, failed = [], []
    for config in args.configs:
        for seed in args.seeds:  # seeds outermost: a partial ablation still covers every activation
            for activation in args.activations:
                record = one_run(args, config, activation, seed, data, weights)
                (records.append(record) if record else failed.append((config, activation, seed)))
    baselines = {json.dumps(r["baseline"]["mpjpe"]) for r in records if r.get("baseline")}
    if len(baselines) > 1:
        print(f"warning: the mean-pose baseline differs between runs: {sorted(baselines)}")
    baseline = next((r["baseline"] for r in records if r.get("baseline")), None)
    rows = summarize(records, args)
    machine = io.machine_line()
    payload = {"command": command, "settings": vars(args), "data": data,
               "markerposer": weights, "machine": machine, "load_start": load_start,
               "wall_s": round(time.time() - started, 1), "baseline": baseline,
               "summary": rows, "runs": records, "failed": failed}
    io.write_json(ROOT / args.root / "ablation.json", payload)
    print(f"\nCommand: `{command}`")
    size = f"{args.image_size}x{args.image_size}"
    print(f"Settings: {args.steps} steps x batch {args.batch}, {size}, "
          f"synthetic {args.train} train / {args.test} test ({data}), MarkerPoser {weights}; "
          f"{machine} at the end, {load_start[0]:.2f} (1 min) at the start; "
          f"wall {time.time() - started:.0f} s (skipped runs cost nothing)\n")
    print(table(rows, baseline))
    print(f"\nwrote {Path(args.root) / 'ablation.json'}")
    if failed:
        print(f"failed runs: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
