"""Body mesh from your own photo: find the person, crop, predict, fit, write pictures, meshes, JSON.

Usage:
    python tools/demo.py IMAGE... [--ckpt PATH] [--out DIR] [--bbox x,y,w,h] [--no-fit]
                         [--all] [--compare]

Example:
    python tools/demo.py photo.jpg --out demo_out
    python tools/demo.py photo.jpg --bbox 410,120,260,640 --ckpt runs/mixer_64

--ckpt     a training workdir or checkpoint prefix of a pose config (default:
           pretrained/mixer_64_kpin, the released keypoint-fed model).
--out      output folder (default: demo_out).
--bbox     the person's box x,y,w,h in pixels (top-left corner, width, height), used for every
           image instead of the person detector (the 2D landmarks still run inside it).
--fit / --no-fit  refine the network's body to BlazePose's 2D keypoints (default: on).
--all      every person found: the whole photo, then square tiles at several scales
           (eval/blazepose/multiscale.py) (default: the most confident one).
--compare  the side view also shows our joints (red) and BlazePose's 3D world landmarks (blue).

People and 2D keypoints come from Google's BlazePose models (run with TensorFlow's TFLite
interpreter; `make blazepose` puts them in cache/ once). Per person, into --out (STEM = the
image's file name without extension; with --all STEM_0, STEM_1, ...):
  STEM_overlay.png  the mesh over the photo, the person box and the 2D keypoints
  STEM_side.png     the mesh turned 90 degrees about its vertical axis, same camera
  STEM.obj, STEM.ply  the mesh in camera coordinates (metres; x right, y down, z forward)
  STEM.json         pose, betas, translation, camera, box, keypoints, the mesh's COCO-17
                    joints (photo pixels, camera frame), detector score, fit,
                    world_agreement_mm, reliable / unreliable_because
and one line "STEM: 3D agreement with BlazePose's world landmarks N mm" on stdout: the mean
distance of our 12 limb joints from BlazePose's metric 3D after Procrustes.
A person whose result should not be trusted (too few keypoints seen, no torso, a fit that ends
far from the keypoints; docs/eval_demo.md) gets "warning: STEM: the result is unreliable: ..."
on stderr and "reliable": false in its JSON. An image with nobody in it gives a warning and no
files; the exit status is 0 when at least
one image gave a mesh, else 2. A missing, corrupt or truncated file, a --bbox outside an
image, a missing model or an unusable checkpoint: one line on stderr, exit status 2, before
any image is processed. Pipeline: eval/demo.py; files: eval/demo_outputs.py.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from eval import demo, demo_outputs  # noqa: E402
from eval.blazepose import BlazePose  # noqa: E402
from eval.blazepose.assets import ModelsMissing  # noqa: E402
from eval.demo import DemoError  # noqa: E402
from eval.fitting import Fitter  # noqa: E402
from pose_era.body import body_model_of  # noqa: E402
from training import checkpoints  # noqa: E402
from training.checkpoints import CheckpointError  # noqa: E402
from training.config import ConfigError  # noqa: E402

DEFAULT_CKPT = "pretrained/mixer_64_kpin"
DEFAULT_OUT = "demo_out"


def parse_bbox(text):
    """'x,y,w,h' -> (x, y, w, h) floats with w, h > 0 (argparse type)."""
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bbox {text!r}: expected x,y,w,h, e.g. "
                                         "410,120,260,640") from None
    if not w > 0 or not h > 0:
        raise argparse.ArgumentTypeError(f"--bbox {text!r}: width and height must be positive")
    return x, y, w, h


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python tools/demo.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--ckpt", default=DEFAULT_CKPT, help="workdir or checkpoint prefix")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--bbox", type=parse_bbox, help="person box x,y,w,h in pixels")
    parser.add_argument("--fit", action=argparse.BooleanOptionalAction, default=True,
                        help="fit the body to the 2D keypoints (default: on)")
    parser.add_argument("--all", action="store_true", help="every detected person")
    parser.add_argument("--compare", action="store_true",
                        help="BlazePose's 3D world landmarks beside our joints in the side view")
    return parser.parse_args(argv)


def check_inputs(args):
    """Every input decodes, names are distinct, the box meets each image: else DemoError."""
    for p in args.images:
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: no such image file")
        width, height = demo.image_size(p)
        if args.bbox is not None:
            demo.check_bbox(args.bbox, width, height, p)
    stems = [Path(p).stem for p in args.images]
    if len(set(stems)) < len(stems):
        raise DemoError("two input images share a file name (outputs are named after it); "
                        "rename or run them separately")
    if not Path(args.ckpt).exists() and args.ckpt == DEFAULT_CKPT:
        raise FileNotFoundError(f"no released model in {DEFAULT_CKPT}: pass --ckpt WORKDIR of a "
                                "pose run, or run `make demo` and use --ckpt runs/demo")


def write_person(out, stem, rgb, person, body, prefix, step, compare):
    """The files of one person; the pictures are optional (a rendering failure warns)."""
    written = demo_outputs.write_mesh(out, stem, person.pred["vertices"], body.faces)
    written.append(demo_outputs.write_params(out, stem, person, body, rgb.shape, prefix, step))
    try:
        written += demo_outputs.write_pictures(out, stem, rgb.astype("float32") / 255.0, person,
                                               body.faces, compare)
    except Exception as err:  # noqa: BLE001  pictures are optional, the mesh is not
        print(f"warning: {stem}: rendering failed ({type(err).__name__}: {err}); the mesh "
              "and parameters were written", file=sys.stderr)
    return written


def run(args):
    """Checks every input, loads the models once, then writes the outputs of each image;
    returns the number of images that gave at least one mesh."""
    check_inputs(args)
    _, prefix, config = checkpoints.open_checkpoint(args.ckpt, task="pose")
    blazepose = BlazePose()
    _, model, step = checkpoints.restore(prefix)
    body = body_model_of(config)
    size = int(config.data.image_size)
    fitter = Fitter(body, size) if args.fit else None
    pipeline = demo.Pipeline(model, size, blazepose, fitter)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    done = 0
    for path in map(Path, args.images):
        rgb = demo.read_image(path)
        people = pipeline(rgb, args.bbox, args.all, fit=args.fit)
        if not people:
            print(f"warning: no person found in {path}", file=sys.stderr)
            continue
        for i, person in enumerate(people):
            stem = f"{path.stem}_{i}" if args.all else path.stem
            for p in write_person(out, stem, rgb, person, body, prefix, step, args.compare):
                print(p)
            if person.world_agreement_mm is not None:
                print(f"{stem}: 3D agreement with BlazePose's world landmarks "
                      f"{person.world_agreement_mm:.0f} mm (Procrustes, 12 limb joints)")
            if person.unreliable_because:
                print(f"warning: {stem}: the result is unreliable: "
                      f"{'; '.join(person.unreliable_because)}", file=sys.stderr)
        done += 1
    return done


def main(argv=None):
    args = parse_args(argv)
    try:
        done = run(args)
    except (FileNotFoundError, DemoError, CheckpointError, ConfigError,
            ModelsMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # an unwritable --out, a full disk
        print(f"error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 2
    return 0 if done else 2


if __name__ == "__main__":
    sys.exit(main())
