"""Turn a finished training workdir into a released model under pretrained/NAME (committed).

    python tools/release_model.py runs/long --name mixer_64_synth

Writes pretrained/NAME/ with config.json, ckpt/ holding the model's weights and the step only
(no optimizer state: a third of the size, nothing a user needs to evaluate or run the demo),
and the workdir's run_info.json, eval/ JSON and tb/ scalars. Evaluate it afterwards with
`python -m eval.h36m --ckpt pretrained/NAME --baseline mean_pose`. The folder appears whole
(written beside it, then renamed); an existing release is replaced only with --force.
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from training import config as config_lib  # noqa: E402
from training import checkpoints  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def release(workdir, out, force=False):
    config, model, step = checkpoints.restore(workdir)
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        config_lib.save_json(config, tmp)
        checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(step, dtype=tf.int64))
        tf.train.CheckpointManager(checkpoint, str(tmp / "ckpt"), max_to_keep=1).save(
            checkpoint_number=step)
        workdir = Path(workdir)
        for name in ("run_info.json", "eval", "tb"):
            source = workdir / name
            if source.is_dir():
                shutil.copytree(source, tmp / name)
            elif source.is_file():
                shutil.copy2(source, tmp / name)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", help="a finished training workdir")
    parser.add_argument("--name", required=True, help="release name: pretrained/NAME")
    parser.add_argument("--force", action="store_true", help="replace an existing release")
    args = parser.parse_args(argv)
    try:
        out, step = release(args.workdir, ROOT / "pretrained" / args.name, args.force)
    except (checkpoints.CheckpointError, config_lib.ConfigError, FileExistsError) as err:
        print(f"release_model: {err}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"released step {step} of {args.workdir} as {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
