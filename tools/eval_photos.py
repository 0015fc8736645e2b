"""Scores the demo on real photos with hand-annotated keypoints: found, joints right, out of frame.

Usage:
    python tools/eval_photos.py [--photos DIR ...] [--annotations FILE] [--ckpt PATH]
                                [--no-fit] [--out FILE] [--sheet FILE] [--fetch]

Example:
    make photos && python tools/eval_photos.py --sheet docs/figures/real_photos.png

--photos       a folder with the annotated photos (repeatable; default: eval/real_photos/, the
               committed ones, then cache/real_photos/, the ones `make photos` fetched).
--annotations  the annotation JSON (default: eval/real_photos/annotations.json; the format is
               in its "about" line and docs/eval_demo.md).
--ckpt         a pose workdir or checkpoint prefix (default: pretrained/mixer_64_kpin).
--no-fit       the network alone (default: the fit runs, and the network alone is scored from
               the same run before its fit).
--out          the JSON summary (default: demo_out/real_photos_eval.json).
--sheet        also write a contact sheet PNG: per found person the network's and the fit's
               mesh over the photo and the fit's side view.
--fetch        fetch the photos that are not committed (pinned ultralytics wheel, SHA-256
               checked; `make photos`) and exit.

Every person of every photo runs through the demo's pipeline (eval/demo.py, --all). Per
annotated person: found (box IoU >= 0.3 with a detection), the fraction of annotated joints
within max(0.35 x shoulder width, 8 % of the person's box height) of the mesh's projected
COCO-17 joints, the out-of-frame joints that project out of the frame, with and without the
fit and for BlazePose's own 2D keypoints (the fit's ceiling if it followed them), and the 3D
agreement with BlazePose's world landmarks where the pipeline gives it. Photos annotated
without people must give "no person found". Scoring: eval/photo_eval.py; the set:
eval/photo_set.py, eval/real_photos/README.md. A missing or altered photo, a bad annotation
file or checkpoint: one line on stderr, exit status 2.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from eval import demo, photo_eval, photo_set, report  # noqa: E402
from eval.blazepose import BlazePose  # noqa: E402
from eval.blazepose.assets import ModelsMissing  # noqa: E402
from eval.demo import DemoError  # noqa: E402
from eval.fitting import Fitter  # noqa: E402
from eval.photo_set import PhotoSetError  # noqa: E402
from pose_era.body import body_model_of  # noqa: E402
from pose_era.io import code_version, describe_os_error  # noqa: E402
from training import checkpoints  # noqa: E402
from training.checkpoints import CheckpointError  # noqa: E402
from training.config import ConfigError  # noqa: E402

DEFAULT_CKPT = "pretrained/mixer_64_kpin"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python tools/eval_photos.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", action="append", type=Path, metavar="DIR",
                        help="folder with the photos (repeatable)")
    parser.add_argument("--annotations", type=Path, default=photo_set.ANNOTATIONS)
    parser.add_argument("--ckpt", default=DEFAULT_CKPT, help="workdir or checkpoint prefix")
    parser.add_argument("--fit", action=argparse.BooleanOptionalAction, default=True,
                        help="fit the body to the 2D keypoints (default: on)")
    parser.add_argument("--out", type=Path, default=Path("demo_out/real_photos_eval.json"))
    parser.add_argument("--sheet", type=Path, help="contact sheet PNG to write")
    parser.add_argument("--fetch", action="store_true", help="fetch the photos and exit")
    return parser.parse_args(argv)


def run(args):
    """Checks the annotations and every photo, loads the models once, scores; returns the
    summary written to --out."""
    photos = photo_set.load_annotations(args.annotations)
    dirs = args.photos or photo_set.photo_dirs()
    for photo in photos:
        demo.image_size(photo_set.locate(photo, dirs))
    if not Path(args.ckpt).exists() and args.ckpt == DEFAULT_CKPT:
        raise FileNotFoundError(f"no released model in {DEFAULT_CKPT}: pass --ckpt WORKDIR")
    _, prefix, config = checkpoints.open_checkpoint(args.ckpt, task="pose")
    blazepose = BlazePose()
    _, model, step = checkpoints.restore(prefix)
    body = body_model_of(config)
    size = int(config.data.image_size)
    pipeline = demo.Pipeline(model, size, blazepose, Fitter(body, size) if args.fit else None)
    photo_records, records, totals, seen = photo_eval.evaluate(
        pipeline, photos, dirs, fit=args.fit,
        progress=lambda f: print(f"  {f}", file=sys.stderr))
    print(photo_eval.table(photo_records, records, totals))
    summary = {"totals": totals, "people": records, "photos": photo_records,
               "annotations": str(args.annotations), "checkpoint": {"prefix": str(prefix),
                                                                    "step": int(step)},
               "fit": bool(args.fit), "code": code_version(),
               "rules": {"joint_right_within": f"max({photo_eval.SHOULDER_FRACTION} x shoulder "
                                               f"width, {photo_eval.HEIGHT_FRACTION} x box "
                                               "height)",
                         "match_min_iou": photo_eval.MIN_IOU}}
    print(report.write_json(args.out, summary))
    if args.sheet is not None:
        sheet = photo_eval.contact_sheet(photos, records, seen, body.faces)
        if sheet is None:
            print("warning: nobody was found: no contact sheet", file=sys.stderr)
        else:
            print(photo_eval.write_sheet(args.sheet, sheet))
    return summary


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.fetch:
            photo_set.fetch()
        else:
            run(args)
    except (FileNotFoundError, PhotoSetError, DemoError, CheckpointError, ConfigError,
            ModelsMissing) as err:
        message = str(err)
    except OSError as err:  # an unwritable --out or --sheet, a full disk
        message = describe_os_error(err)
    except RuntimeError as err:
        if not args.fetch:  # only the fetch's one-line errors (pip, hashes) are expected
            raise
        message = str(err)
    else:
        return 0
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
