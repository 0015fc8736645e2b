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
--vertex_align  pelvis (default): MPVPE after subtracting each mesh's pelvis (BEDLAM);
                none: raw camera-frame vertices (VIBE, PARE).
--out           folder for the JSON (default: WORKDIR/eval; e.g. to keep a released model's
                folder unchanged).

Prints MPJPE, PA-MPJPE (14 LSP joints, mm), MPVPE (mm, where ground-truth body parameters
exist) and the image count, per Human3.6M action too; writes WORKDIR/eval/<dataset>_p<P>.json
(dataset = h36m or synth) with the numbers, the options, the checkpoint step and the npz's
SHA-256. Errors (bad checkpoint, config mismatch, missing files) are one line, exit status 2.
"""
import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data_pipelines import h36m, pipeline, schema  # noqa: E402
from eval import metrics, report  # noqa: E402
from models.mean_body import mean_body  # noqa: E402
from models.thundr import initial_markers  # noqa: E402
from pose_era import checkpoints, geometry  # noqa: E402
from pose_era import config as config_lib  # noqa: E402
from pose_era.config import ConfigError  # noqa: E402
from pose_era.io import describe_os_error, sha256_of  # noqa: E402
from pose_era.tasks import pose  # noqa: E402

BASELINES = ("mean_pose",)
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


def open_checkpoint(path):
    """(workdir, prefix, config) of a pose checkpoint, without building the model (cheap, so
    every other input can be checked before the slow part); EvalError when it is no pose run."""
    workdir, prefix = checkpoints.find(path)
    config = config_lib.load_json(workdir)
    if config.get("task") != "pose":
        raise EvalError(f"{workdir} was trained for task '{config.get('task')}', not 'pose'; "
                        "pass the workdir of a pose config (e.g. runs/demo)")
    return Path(workdir), prefix, config


def dataset_file(data, protocol, config):
    """(dataset name, npz path) for --data DIR or --data synth."""
    if data == SYNTH:
        path = Path(pipeline.synthetic_dir(config)) / "synth_test.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the synthetic set is written when its "
                                    "config first trains; run `make demo` or python -m "
                                    "pose_era.train with the same config")
        return SYNTH, path
    if not Path(data).is_dir():
        raise FileNotFoundError(f"--data {data} is not a folder; put {h36m.WHERE} in one and "
                                "pass it, or use --data synth")
    if (Path(data) / SYNTH_META).is_file():
        _check_synthetic_body(Path(data), config)
        return f"{SYNTH}_{Path(data).resolve().name}", Path(data) / "synth_test.npz"
    return "h36m", Path(h36m.split_path(data, "test", protocol))


def _check_synthetic_body(folder, config):
    """A make_synth folder's labels must come from a body model like the checkpoint's."""
    meta = json.loads((folder / SYNTH_META).read_text())
    body = pose.body_model(config)
    have = {"num_joints": body.num_joints, "num_betas": body.num_betas,
            "num_markers": body.num_markers}
    wrong = [f"{k} {meta.get(k)} vs {v}" for k, v in have.items() if meta.get(k) != v]
    if wrong:
        raise EvalError(f"--data {folder} was made with another body model than the "
                        f"checkpoint's ({', '.join(wrong)}); make it with the same body "
                        "(tools/make_synth.py --body)")
    if not (folder / "synth_test.npz").is_file():
        raise FileNotFoundError(f"{folder}/synth_test.npz is missing: the folder is not a "
                                "complete tools/make_synth.py set")


def make_dataset(npz, name, config, body, batch_size):
    """Batched schema examples of a SPIN-layout npz (images resolved beside it), with the
    intrinsics rule the training pipeline uses (data.h36m_intrinsics, default auto)."""
    source = h36m.source(str(npz), image_size=int(config.data.image_size),
                         sizes=schema.LabelSizes.from_body_model(body),
                         intrinsics=config.data.get("h36m_intrinsics", "auto"), name=name)
    ds = source.examples(source.records(), len(source))
    return ds.batch(batch_size).prefetch(2), len(source)


class MeanPoseBaseline:
    """The mean-pose baseline: the same body for every image, placed by the camera alone.

    The mean body (mean shape, identity joint rotations, upright, facing the camera) placed
    where the network's initial guess M_0 puts it (models/thundr.py: centred on the crop's
    central ray, filling model.init_fill of it). After pelvis alignment only its pose counts.
    """

    def __init__(self, body, config):
        mean = mean_body(body)
        rot = np.tile(np.eye(3, dtype=np.float32), (1, body.num_joints, 1, 1))
        rot[0, 0] = mean["root"]
        rest = body(np.zeros((1, body.num_betas), np.float32), rot, mean["transl_offset"][None])
        self.rest = {k: rest[k].numpy() for k in ("h36m17", "vertices")}  # centred on the box
        self.extent = mean["extent"]
        self.image_size = int(config.data.image_size)
        self.fill = float(config.model.init_fill)

    def __call__(self, K):
        """K (B,3,3) crop intrinsics -> dict h36m17 (B,17,3), vertices (B,V,3), metres."""
        centre = np.asarray(initial_markers(tf.cast(K, tf.float32), self.image_size,
                                            np.zeros((1, 3), np.float32), self.extent,
                                            self.fill))  # (B,1,3)
        return {k: v + centre for k, v in self.rest.items()}


def _errors(pred, gt, gt_verts, pelvis, vertex_align):
    """Per-sample metric arrays (mm) for predictions and ground truth of one batch."""
    out = {"mpjpe": metrics.mpjpe(pred["h36m17"], gt["j3d"], pelvis),
           "pa_mpjpe": metrics.pa_mpjpe(pred["h36m17"], gt["j3d"])}
    if gt_verts is not None:
        out["mpvpe"] = metrics.mpvpe(pred["vertices"], gt_verts["vertices"], vertex_align,
                                     metrics.pelvis_of(pred["h36m17"], pelvis),
                                     metrics.pelvis_of(gt_verts["h36m17"], pelvis))
    return out


def evaluate(model, body, config, dataset, total, pelvis="spin", vertex_align="pelvis",
             baseline=None):
    """Runs the model (and the baseline) over `dataset`.

    Returns (imgnames, {row name: {metric: (N,) mm or None}}). Samples without valid 3D joints
    are skipped; MPVPE exists only when every sample has ground-truth body parameters.
    """
    rows = ["model"] + ([baseline] if baseline else [])
    mean_pose = MeanPoseBaseline(body, config) if baseline else None
    errors = {r: {m: [] for m in report.METRICS} for r in rows}
    names, all_have_params = [], True
    for batch in tqdm(dataset, total=total, desc="eval", unit="batch", file=sys.stderr):
        keep = batch["has_j3d"].numpy() > 0
        if not keep.any():
            continue
        inputs = {"image": batch["image"], "K": batch["K"]}
        # Eager: the convolutions dominate, and a graph would be traced again for the last,
        # smaller batch (seconds of tracing for a few milliseconds of Python overhead saved).
        preds = {"model": model(inputs, training=False)}
        if baseline:
            preds[baseline] = mean_pose(batch["K"])
        gt = {"j3d": batch["j3d"].numpy()[keep]}
        gt_verts = None
        all_have_params &= bool((batch["has_params"].numpy()[keep] > 0).all())
        if all_have_params:
            gt_body = body(batch["betas"], geometry.axis_angle_to_matrix(batch["pose"]),
                           batch["transl"])
            gt_verts = {k: gt_body[k].numpy()[keep] for k in ("vertices", "h36m17")}
        for r in rows:
            pred = {k: np.asarray(preds[r][k])[keep] for k in ("h36m17", "vertices")}
            for m, v in _errors(pred, gt, gt_verts, pelvis, vertex_align).items():
                errors[r][m].append(v)
        names += [n.decode() for n in batch["imgname"].numpy()[keep]]
    if not names:
        raise EvalError("no sample with valid 3D joints was evaluated; check the npz's 'S'")
    result = {r: {m: (np.concatenate(v) if v and (m != "mpvpe" or all_have_params) else None)
                  for m, v in errors[r].items()} for r in rows}
    return names, result


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
    workdir, prefix, config = open_checkpoint(args.ckpt)
    name, npz = dataset_file(args.data, args.protocol, config)
    _, model, step = checkpoints.restore(prefix)
    body = pose.body_model(config)
    batch_size = args.batch_size or int(config.get("eval", {}).get("batch_size", 8))
    dataset, count = make_dataset(npz, name, config, body, batch_size)
    names, errors = evaluate(model, body, config, dataset, math.ceil(count / batch_size),
                             args.pelvis, args.vertex_align, args.baseline)
    actions = report.actions_of(names)
    summaries = {row: report.summarize(e, actions) for row, e in errors.items()}
    print(f"{name} protocol {args.protocol}: {npz} (checkpoint {prefix}, step {step})")
    print(report.results_table(summaries))
    if actions is not None:
        print()
        print(report.action_table(summaries))
    payload = build_payload(name, args.protocol, npz, summaries, options_of(args), step, prefix)
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
