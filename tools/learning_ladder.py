"""Rung 2 of the learning ladder (training/ladder.py): the real pose config memorises N images.

    python tools/learning_ladder.py [--config mixer_64:cpu] [--images 64] [--steps 800]
                                    [--set KEY=VALUE ...] [--out FILE.json]

Trains a fresh model of the config on N images of its training split (drawn once, without
augmentation, then kept: batches of train.batch_size visited in turn) and prints the centred marker error
(metres) on those same images before training and after it, in training and in inference
(BatchNorm moving statistics) mode. A healthy recipe takes both well below the mean body's
error; a gap between the two modes points at BatchNorm, a stall at the losses or the gradients.
docs/pose_results.md has the measured numbers.
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pose_era import io  # noqa: E402
from training import config as config_lib  # noqa: E402
from training import ladder, tasks  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="mixer_64:cpu")
    parser.add_argument("--images", type=int, default=64, help="images to memorise")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    try:
        if args.images < 1 or args.steps < 1:
            raise config_lib.ConfigError("--images and --steps must be >= 1")
        config = config_lib.load_config(args.config)
        config_lib.apply_overrides(config, args.set)
        config.data.augment = False
        count = -(-args.images // int(config.train.batch_size))
        task = tasks.get(config.task)(config)
        batches = list(task.train_dataset().take(count))
    except (config_lib.ConfigError, FileNotFoundError, ValueError) as err:
        print(f"learning_ladder: {err}", file=sys.stderr)
        return 2
    result = ladder.memorise(task, batches, args.steps, log_every=max(1, args.steps // 10))
    result.update(config=args.config, overrides=args.set, images=sum(
        int(i["image"].shape[0]) for i, _ in batches))
    print(json.dumps(result, indent=2))
    if args.out:
        io.write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
