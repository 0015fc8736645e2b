"""Evaluate a pose checkpoint with SPIN's Human3.6M protocols (or on the synthetic test split).

Usage:
    python -m eval.h36m --ckpt PATH [--protocol 1|2] [--data DIR|synth] [--batch_size B]
                        [--baseline mean_pose] [--pelvis spin|hips] [--vertex_align pelvis|none]
                        [--out DIR]

Example:
    python -m eval.h36m --ckpt runs/demo --baseline mean_pose
    python -m eval.h36m --ckpt runs/mixer_64 --data /data/spin_h36m --protocol 2

--ckpt          a training workdir (its last checkpoint) or a checkpoint prefix inside one
                (WORKDIR/ckpt/ckpt-300); the model and body model come from WORKDIR/config.json.
--data          DIR: a folder with SPIN's h36m_valid_protocol1.npz / h36m_valid_protocol2.npz
                and the images/ they name (SPIN's fetch_data.sh + datasets/preprocess), or a
                synthetic set made by tools/make_synth.py (its test split: a fresh, larger or
                differently seeded set; the JSON is then eval/synth_<folder>_p<P>.json).
                synth (default): the synthetic test split (synth_test.npz, same layout, same
                reader) of the checkpoint's config.
--protocol      1: subjects S9, S11, all four cameras; 2: camera 60457274 only (default 1, as SPIN).
                Both every 5th frame, as SPIN's files. The synthetic split has one file for both.
--batch_size    images per inference batch (default: the config's eval.batch_size).
--baseline      mean_pose: also score the mean body (mean shape, rest pose, upright, facing
                the camera, placed in the crop as the network's starting guess) on the same
                images: the floor every table should beat.
--pelvis        spin (default): subtract the regressed H36M pelvis joint (SPIN, PARE);
                hips: subtract the midpoint of the two hips (VIBE, BEDLAM).
--vertex_align  pelvis (default): MPVPE after subtracting each mesh's pelvis (BEDLAM; VIBE and
                PARE compare meshes posed without the camera translation, which this matches
                up to the pelvis offset); none: raw camera-frame vertices, translation error
                included.
--out           folder for the JSON (default: WORKDIR/eval; e.g. to keep a released model's
                folder unchanged).

The images come from `pipeline.build_dataset(config, "test")` with data.name/dir/protocol set
from --data and --protocol (a keypoint-fed model, model.keypoint_input, also gets 2D keypoints:
BlazePose's on each image, or what the config's eval.keypoints names; the table's header and
the JSON's options say which), and are scored by eval/pose_eval.py, the evaluator training's
validation uses (a synthetic set that is not built yet gets its test split rendered first, with a
progress bar; not its training images).
Prints MPJPE, PA-MPJPE (14 LSP joints, mm), MPVPE (mm, where ground-truth body parameters
exist) and the image count, per Human3.6M action too; writes WORKDIR/eval/<dataset>_p<P>.json
(dataset = h36m or synth) with the numbers, the options, the checkpoint step and the npz's
SHA-256. Errors (bad checkpoint, config mismatch, missing files) are one line, exit status 2.
"""
import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from data_pipelines import h36m, pipeline  # noqa: E402
from eval import metrics, report  # noqa: E402
from eval.pose_eval import BASELINES, PoseEvaluator  # noqa: E402
from pose_era.body import body_model_of  # noqa: E402
from pose_era.io import describe_os_error, sha256_of  # noqa: E402
from training import checkpoints  # noqa: E402
from training.config import ConfigError  # noqa: E402

SYNTH = "synth"
SYNTH_META = "meta.json"     # written by tools/make_synth.py into every synthetic set


class EvalError(ValueError):
    """A user-facing problem with the inputs; the message says what to do."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m eval.h36m", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="training workdir or checkpoint prefix")
    parser.add_argument("--protocol", type=int, choices=(1, 2), default=1)
    parser.add_argument("--data", default=SYNTH,
                        help="folder with SPIN's h36m_valid_protocol{1,2}.npz, or 'synth'")
    parser.add_argument("--batch_size", type=int, default=0)
    parser.add_argument("--baseline", choices=BASELINES)
    parser.add_argument("--pelvis", choices=metrics.PELVIS, default="spin")
    parser.add_argument("--vertex_align", choices=metrics.VERTEX_ALIGN, default="pelvis")
    parser.add_argument("--out", help="folder for the JSON (default: WORKDIR/eval)")
    args = parser.parse_args(argv)
    if args.batch_size < 0:
        parser.error("--batch_size must be positive")
    return args


def point_at_data(config, data, protocol):
    """Sets config.data so that its "test" split is --data's; returns (dataset name, npz)."""
    d = config.data
    if data == SYNTH:
        if d.name.split("+")[0] != "synthetic":
            raise EvalError(f"--data synth: the checkpoint's config trains on {d.name}; pass "
                            "--data DIR with the test files instead")
        return SYNTH, Path(pipeline.synthetic_dir(config)) / "synth_test.npz"
    folder = Path(data)
    if not folder.is_dir():
        raise FileNotFoundError(f"--data {data} is not a folder; put {h36m.WHERE} in one and "
                                "pass it, or use --data synth")
    if (folder / SYNTH_META).is_file():  # its body model is checked by the pipeline
        d.name, d.dir = "synthetic", str(folder)
        return f"{SYNTH}_{folder.resolve().name}", folder / "synth_test.npz"
    d.name, d.dir, d.protocol = "h36m", str(folder), protocol
    return "h36m", Path(h36m.split_path(str(folder), "test", protocol))


def build_payload(dataset, protocol, npz, summaries, options, step, prefix):
    """The JSON written to WORKDIR/eval: the model's numbers at the top level."""
    model = summaries["model"]
    payload = {**model, "dataset": dataset, "protocol": protocol, "npz": str(npz),
               "npz_sha256": sha256_of(npz), "options": options,
               "checkpoint": {"prefix": str(prefix), "step": int(step)}, "units": "mm"}
    payload["baselines"] = {name: s for name, s in summaries.items() if name != "model"}
    return payload


def options_of(args):
    return {"pelvis": args.pelvis, "vertex_align": args.vertex_align,
            "joints": "14 LSP-order joints (SPIN's H36M_TO_J14) of H36M-17",
            "pa": "Procrustes: scale, rotation (no reflection), translation",
            "protocol": args.protocol}


def run(args):
    """Everything but argument parsing; returns the path of the JSON written."""
    workdir, prefix, config = checkpoints.open_checkpoint(args.ckpt, task="pose")
    body = body_model_of(config)
    name, npz = point_at_data(config, args.data, args.protocol)
    config.eval.update(pelvis=args.pelvis, vertex_align=args.vertex_align,
                       baseline=args.baseline or "")
    if args.batch_size:
        config.eval.batch_size = args.batch_size
    dataset = pipeline.build_dataset(config, "test", body_model=body)
    _, model, step = checkpoints.restore(prefix)
    count = pipeline.num_examples(config, "test")
    evaluator = PoseEvaluator.from_config(config, body)
    names, errors = evaluator.per_sample(
        model, dataset, math.ceil(count / int(config.eval.batch_size)), progress=True)
    if not names:
        raise EvalError("no sample with valid 3D joints was evaluated; check the npz's 'S'")
    actions = report.actions_of(names)
    summaries = {row: report.summarize(e, actions) for row, e in errors.items()}
    print(f"{name} protocol {args.protocol}: {npz} (checkpoint {prefix}, step {step})")
    keypoints = evaluator.keypoint_source
    if keypoints is not None:   # a keypoint-fed model (model.keypoint_input): say what it read
        print(f"2D keypoints given to the network: {keypoints.description}")
    print(report.results_table(summaries))
    if actions is not None:
        print()
        print(report.action_table(summaries))
    options = options_of(args)
    if keypoints is not None:
        options["keypoints"] = keypoints.description
    payload = build_payload(name, args.protocol, npz, summaries, options, step, prefix)
    out = Path(args.out) if args.out else workdir / "eval"
    try:
        path = report.write_json(out / f"{name}_p{args.protocol}.json", payload)
    except OSError as err:  # e.g. a read-only released workdir: the table above still stands
        raise EvalError(f"{describe_os_error(err)} (the results above are complete but were "
                        "not saved; --out DIR writes them elsewhere)") from None
    print(f"wrote {path}")
    return path


def main(argv=None):
    args = parse_args(argv)
    checkpoints.quiet_restore_logs()
    try:
        run(args)
    except (EvalError, ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, tf.errors.OpError) as err:
        line = (describe_os_error(err, "cannot use") if isinstance(err, OSError)
                else err.message.splitlines()[0])
        print(f"error: {line}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
