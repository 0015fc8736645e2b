"""Score a pre-trained MarkerPoser on fresh random bodies, clean and with marker noise.

    python tools/eval_markerposer.py pretrained/markerposer_m64.npz [--noise 0,0.01,0.03]
                                     [--head pretrained/mixer_64_synth]

Root-relative MPJPE (mm) over the body model's joints on --num fresh bodies
(models/markerposer_pretrain.py's sampler), per marker-noise level (Gaussian, std per coordinate,
metres), next to the mean-pose baseline. --head CKPT adds the noise level a trained head really
makes: its final markers against the true markers (from the body parameters) of its synthetic
test split, centred, as a per-coordinate std (mean distance / 1.596, the mean norm of a 3D
Gaussian of unit std), and scores the MarkerPoser with Gaussian noise of that size.

The layer's shape (hidden sizes, activation, act_norm, canonical_frame) comes from the file
(models.markerposer.weights_settings: the .json tools/pretrain_markerposer.py writes next to
the .npz, and the .npz's canonical_frame flag); --hidden, --act_norm, --canonical_frame
override it.
"""
import argparse
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from data_pipelines import pipeline  # noqa: E402
from eval.pose_eval import PoseEvaluator  # noqa: E402
from models import markerposer as mp  # noqa: E402
from models import markerposer_pretrain as pre  # noqa: E402
from pose_era import losses  # noqa: E402
from pose_era.body import BodyModel, body_model_of, default_body_model_path  # noqa: E402
from training import checkpoints  # noqa: E402

GAUSS_MEAN_NORM = 2 * math.sqrt(2 / math.pi)   # E|x| for x ~ N(0, I_3)


def head_noise(ckpt):
    """(per-coordinate std in metres, image count) of a trained head's centred marker error."""
    _, prefix, config = checkpoints.open_checkpoint(ckpt, task="pose")
    _, model, _ = checkpoints.restore(prefix)
    body = body_model_of(config)
    config.eval.batch_size = 32
    dataset = pipeline.build_dataset(config, "test", body_model=body)
    count = pipeline.num_examples(config, "test")
    evaluator = PoseEvaluator.from_config(config, body)   # a keypoint-fed head gets its keypoints
    errors = []
    for batch in dataset:
        pred = model(evaluator.model_inputs_of(batch), training=False)["markers"]
        true = body.from_labels(batch["betas"], batch["pose"], batch["transl"])["markers"]
        errors.append(losses.mean_distance(losses.centred(pred), losses.centred(true)).numpy())
    return float(np.mean(np.concatenate(errors))) / GAUSS_MEAN_NORM, count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="MarkerPoser .npz (tools/pretrain_markerposer.py)")
    parser.add_argument("--noise", default="0,0.01", help="comma-separated stds, metres")
    parser.add_argument("--head", help="a pose checkpoint whose marker error sets one more level")
    parser.add_argument("--hidden", help="comma-separated hidden sizes (default: the .json's, "
                        "else 1024,512,256)")
    parser.add_argument("--act_norm", action="store_true", default=None)
    parser.add_argument("--canonical_frame", action="store_true", default=None)
    parser.add_argument("--num", type=int, default=2048)
    args = parser.parse_args(argv)
    try:
        noise = [float(n) for n in args.noise.split(",") if n]
        body = BodyModel.load(default_body_model_path())
        settings = mp.weights_settings(args.weights)
        settings.update({k: getattr(args, k) for k in ("act_norm", "canonical_frame")
                         if getattr(args, k) is not None})
        if args.hidden:
            settings["hidden"] = tuple(int(h) for h in args.hidden.split(","))
        print(f"MarkerPoser {args.weights}: {settings}")
        layer = mp.new_markerposer(body, **settings)
        mp.load_weights(layer, args.weights)
        if args.head:
            std, count = head_noise(args.head)
            print(f"head {args.head}: centred marker error on {count} test images = "
                  f"{1000 * std * GAUSS_MEAN_NORM:.1f} mm mean, i.e. {1000 * std:.1f} mm "
                  "per coordinate")
            noise.append(std)
    except (ValueError, FileNotFoundError, checkpoints.CheckpointError) as err:
        print(f"eval_markerposer: {err}", file=sys.stderr)
        return 2
    print(f"{'marker noise (mm/coord)':>24} {'MPJPE mm':>9} {'mean pose mm':>13}")
    for std in noise:
        result = pre.evaluate_markerposer(layer, body, num=args.num, noise=std)
        print(f"{1000 * std:24.1f} {result['mpjpe_mm']:9.1f} {result['baseline_mm']:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
