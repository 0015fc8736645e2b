"""`make demo`: the whole pipeline on the embedded default (Anny + synthetic data) on a CPU.

Runs the user-facing commands one after another, printing each before it runs, so the demo is
also the tutorial:
  1. body model: Anny -> cache/body (as tools/build_body_model.py; once)
  2. synthetic dataset: the `mixer_64:cpu` config's rendered train/test split (tools/make_synth.py;
     once)
  3. training: python -m pose_era.train --config mixer_64:cpu (~5 min; resumes if interrupted;
     a previous run it cannot resume, e.g. of an older release, is moved to runs/demo.old-<time>),
     its backbone starting from the released model's (exported once to cache/backbones/: the stand-in
     for the ImageNet weights nothing may download here); `--from_scratch` trains every weight
     from random instead
  4. evaluation of that run and of the released model on the same test split, each beside the
     mean-body baseline (python -m eval.h36m ... --baseline mean_pose)
  5. pictures: python tools/demo.py on a few synthetic test images with the released model
     -> demo_out/ (the 160 px crops drawn enlarged to 480 px, the mesh rendered at 480)
Steps whose output already exists are skipped, so a second `make demo` only re-evaluates.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "mixer_64:cpu"
RELEASE = "pretrained/mixer_64_synth"
WORKDIR = "runs/demo"
OUT = "demo_out"
BAR = 0.8   # the demo's model must reach PA-MPJPE <= 0.8 x the mean body's


def run(*cmd):
    print(f"\n$ python {' '.join(cmd)}", flush=True)
    started = time.time()
    result = subprocess.run([sys.executable, *cmd], cwd=ROOT)
    if result.returncode:
        sys.exit(f"make demo: step failed (exit {result.returncode}): {' '.join(cmd)}")
    print(f"  ({time.time() - started:.0f} s)", flush=True)


def export_backbone(release, path):
    """The released model's trained CNN as a Keras weights file (`model.backbone.weights=`)."""
    from models.backbones import save_cnn_weights
    from pose_era import io
    from training import checkpoints
    _, model, step = checkpoints.restore(release)
    io.write_via_path(path, lambda tmp: save_cnn_weights(model.get_layer("backbone"), tmp))
    print(f"backbone of {release} (step {step}) -> {path}", flush=True)


def set_aside_if_changed(config, workdir):
    """Moves a previous demo run that `config` could not resume (another release's backbone, a
    changed recipe) to WORKDIR.old-<time>, so make demo trains afresh and loses nothing.
    Returns the new place, or None when there was nothing to move."""
    from training import config as config_lib
    conflicts = config_lib.resume_conflicts(config, workdir)
    if not conflicts:
        return None
    aside = Path(f"{workdir}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(workdir, aside)
    print(f"{workdir} was trained with another config ({', '.join(conflicts[:3])}); moved it "
          f"to {aside}, training afresh", flush=True)
    return aside


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=0,
                        help="pose training steps (default: the config's)")
    parser.add_argument("--from_scratch", action="store_true",
                        help="train the backbone from random weights too")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    started = time.time()
    sys.path.insert(0, str(ROOT))
    from training import config as config_lib
    from data_pipelines.pipeline import synthetic_dir
    from eval.report import results_table
    from pose_era.body import default_body_model_path

    print(f"body model: {default_body_model_path()}", flush=True)  # built and cached once
    config = config_lib.load_config(CONFIG)
    data = config.data
    synth = Path(synthetic_dir(config)).relative_to(ROOT)
    if not (synth / "synth_test.npz").is_file():
        run("tools/make_synth.py", "--out", str(synth), "--train", str(data.synth_train),
            "--test", str(data.synth_test), "--seed", str(data.synth_seed),
            "--image-size", str(data.image_size))
    overrides = [f"train.steps={args.steps}"] if args.steps else []
    if not args.from_scratch:
        from pose_era import io
        from training import checkpoints
        prefix = checkpoints.find(RELEASE)[1]
        # Named by the checkpoint's content, not its step: a new release of the same length
        # must not pick up the backbone exported from the one before.
        digest = io.sha256_of(f"{prefix}.data-00000-of-00001")[:12]
        backbone = Path("cache", "backbones", f"{Path(RELEASE).name}-{digest}.weights.h5")
        if not backbone.is_file():
            export_backbone(RELEASE, backbone)
        overrides.append(f"model.backbone.weights={backbone}")
    set_aside_if_changed(config_lib.apply_overrides(config_lib.load_config(CONFIG), overrides),
                         WORKDIR)
    run("-m", "pose_era.train", "--config", CONFIG, "--workdir", WORKDIR,
        *(["--set", *overrides] if overrides else []))
    run("-m", "eval.h36m", "--ckpt", WORKDIR, "--baseline", "mean_pose")
    run("-m", "eval.h36m", "--ckpt", RELEASE, "--data", str(synth), "--baseline", "mean_pose",
        "--out", f"{WORKDIR}/eval/released")
    images = sorted(Path(synth, "images").glob("*.jpg"))[:3]
    size = int(data.image_size)  # the test images are person crops already: the box is the image
    run("tools/demo.py", *map(str, images), "--ckpt", RELEASE, "--out", OUT,
        "--bbox", f"0,0,{size},{size}")

    mine = json.loads(Path(WORKDIR, "eval", "synth_p1.json").read_text())
    released = json.loads(next(Path(WORKDIR, "eval", "released").glob("*.json")).read_text())
    base = mine["baselines"]["mean_pose"]
    print(f"\nsynthetic test split {synth}, mm:")
    print(results_table({f"this demo's run ({WORKDIR})": mine,
                         f"released model ({RELEASE})": released,
                         "mean body (baseline)": base}))
    ratio = mine["pa_mpjpe"] / base["pa_mpjpe"]
    verdict = "met" if ratio <= BAR and mine["mpjpe"] < base["mpjpe"] else "NOT met"
    print(f"this run's PA-MPJPE is {ratio:.2f} x the mean body's (bar: <= {BAR}, MPJPE below "
          f"the mean body's): {verdict}")
    print(f"\nmake demo finished in {(time.time() - started) / 60:.1f} min.")
    print(f"  training run:   {WORKDIR} (tensorboard --logdir {WORKDIR}/tb)")
    print(f"  metrics (JSON): {WORKDIR}/eval/")
    print(f"  pictures:       {OUT}/ (the released model)")
    for path in sorted(Path(OUT).glob("*.png")):
        print(f"    {path}")


if __name__ == "__main__":
    main()
