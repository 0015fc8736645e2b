"""Body mesh from your own photo: find the person, crop, predict, write pictures, meshes, JSON.

Usage:
    python tools/demo.py IMAGE... [--ckpt PATH] [--out DIR] [--bbox x,y,w,h]

Example:
    python tools/demo.py photo.jpg --out demo_out
    python tools/demo.py photo.jpg --bbox 410,120,260,640 --ckpt runs/mixer_64

--ckpt  a training workdir or checkpoint prefix of a pose config (default: runs/demo, the model
        `make demo` trains).
--out   output folder (default: demo_out).
--bbox  the person's box x,y,w,h in pixels (top-left corner, width, height), used for every
        image; without it OpenCV's built-in HOG people detector (no download) picks the most
        confident person, and when it finds none the whole image is used (with a warning).

Per image, into --out (STEM = the image's file name without extension):
  STEM_overlay.png  the mesh drawn over the photo (and the person box)
  STEM_side.png     the mesh turned 90 degrees about its vertical axis, same camera
  STEM.obj, STEM.ply  the mesh in camera coordinates (metres; x right, y down, z forward)
  STEM.json         pose (axis-angle per joint, with names), betas, translation, camera, box

The camera of an unknown photo: focal sqrt(W^2 + H^2) of the full image, principal point at its
centre (CLIFF/BEDLAM); the crop's intrinsics follow from it (pose_era.geometry.crop_intrinsics),
so the mesh is in the full photo's camera frame and projects onto the photo with that K.
Rendering is pure NumPy (data_pipelines/synthetic/renderer.py); if it fails anyway, the
meshes and the JSON are still written. A missing file, a non-image or an unusable checkpoint:
one line on stderr, exit status 2.
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import trimesh  # noqa: E402

from data_pipelines import images  # noqa: E402
from eval.h36m import EvalError, open_checkpoint  # noqa: E402
from pose_era import checkpoints, geometry  # noqa: E402
from pose_era.checkpoints import CheckpointError  # noqa: E402
from pose_era.config import ConfigError  # noqa: E402
from pose_era.tasks import pose  # noqa: E402

DEFAULT_CKPT = "runs/demo"
DEFAULT_OUT = "demo_out"
ENLARGE = 1.2        # crop side = 1.2 x the person box's longer side (SPIN's scaleFactor)
HOG_TIGHTEN = 0.8    # HOG's 64x128 window has a margin around the person: shrink it first
HOG_SIDE = 640       # the detector runs on the image resized to this longer side
HOG_PAD = 0.25       # ... with a replicated border of this fraction of that side


class DemoError(ValueError):
    """A problem with the demo's inputs; the message says what to do."""


def parse_bbox(text):
    """'x,y,w,h' -> (x, y, w, h) floats with w, h > 0 (argparse type)."""
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bbox {text!r}: expected x,y,w,h, e.g. "
                                         "410,120,260,640") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"--bbox {text!r}: width and height must be positive")
    return x, y, w, h


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python tools/demo.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--ckpt", default=DEFAULT_CKPT, help="workdir or checkpoint prefix")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--bbox", type=parse_bbox, help="person box x,y,w,h in pixels")
    return parser.parse_args(argv)


def check_image(path):
    """FileNotFoundError / DemoError unless `path` is a file OpenCV recognises as an image
    (header only: cheap, so every input is checked before the model loads)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    if not cv2.haveImageReader(str(path)):
        raise DemoError(f"{path}: not an image OpenCV can read (JPEG, PNG, BMP, ...)")


def read_image(path):
    """RGB float32 (H,W,3) in [0,1]; DemoError when the file cannot be decoded."""
    check_image(path)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DemoError(f"{path}: the image could not be decoded (truncated or damaged file?)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def detect_person(image):
    """The most confident HOG person box (x, y, w, h) in pixels, or None.

    OpenCV's default people detector (Dalal-Triggs HOG + linear SVM, shipped inside OpenCV);
    the image is resized to a longer side of HOG_SIDE pixels first, so people of any photo
    size reach the detector's 64x128 window. Detections lying mostly inside the most confident
    one's box, or containing it (the same person found at another scale, e.g. only the legs),
    are merged into it.
    """
    h, w = image.shape[:2]
    s = HOG_SIDE / max(h, w)
    small = cv2.resize((image * 255).round().astype(np.uint8), (round(w * s), round(h * s)),
                       interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    # A border lets a person who fills the frame fit the window with its margin.
    pad = round(HOG_PAD * max(small.shape[:2]))
    gray = cv2.copyMakeBorder(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), pad, pad, pad, pad,
                              cv2.BORDER_REPLICATE)
    rects, weights = hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
    if len(rects) == 0:
        return None
    corners = (np.asarray(rects, np.float64) - [pad, pad, 0, 0]) / s
    corners[:, 2:] += corners[:, :2]                      # x0, y0, x1, y1
    best = corners[int(np.argmax(np.ravel(weights)))]
    box = best.copy()
    for c in corners:
        inter = np.prod(np.clip(np.minimum(c[2:], best[2:]) - np.maximum(c[:2], best[:2]), 0,
                                None))
        smaller = min(np.prod(c[2:] - c[:2]), np.prod(best[2:] - best[:2]))
        if inter >= 0.5 * smaller:
            box = np.concatenate([np.minimum(box[:2], c[:2]), np.maximum(box[2:], c[2:])])
    centre, size = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) * HOG_TIGHTEN
    return tuple(float(v) for v in (*(centre - size / 2), *size))


def crop_box(xywh):
    """Square crop box [x0, y0, x1, y1]: ENLARGE x the longer side, same centre (may leave
    the image; the crop is padded black there)."""
    x, y, w, h = xywh
    half = ENLARGE * max(w, h) / 2
    cx, cy = x + w / 2, y + h / 2
    return np.array([cx - half, cy - half, cx + half, cy + half], np.float32)


def full_intrinsics(width, height):
    """K of an unknown camera: focal sqrt(W^2 + H^2), principal point at the image centre."""
    return geometry.intrinsics(geometry.default_focal(width, height), width, height).numpy()


def prepare_crop(image, K_full, box, size):
    """The network's input: `box` of the photo resized to size x size, and its intrinsics.

    The warp is the readers' (data_pipelines/images.crop, bilinear). A photo much larger than
    the crop is first shrunk with area averaging so the warp never minifies more than 2x
    (bilinear minification aliases); its K and the box are scaled with it, which leaves the
    crop's intrinsics exactly crop_intrinsics(K_full, box, size).
    """
    h, w = image.shape[:2]
    r = min(1.0, 2.0 * size / float(box[2] - box[0]))
    if r < 1.0:
        new_w, new_h = max(1, round(w * r)), max(1, round(h * r))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        sx, sy = new_w / w, new_h / h
        K_full = np.diag([sx, sy, 1.0]).astype(np.float32) @ K_full
        box = box * np.array([sx, sy, sx, sy], np.float32)
    crop, K_crop, _ = images.crop(tf.constant(image), K_full, box, size)
    return crop, K_crop.numpy()


def predict(model, crop, K_crop):
    """Runs the model on one crop; returns its outputs as NumPy arrays without the batch axis."""
    outputs = model({"image": crop[None], "K": tf.constant(K_crop[None])}, training=False)
    return {k: np.asarray(v)[0] for k, v in outputs.items()}


def _atomic(path, write):
    """Calls write(tmp_path) and renames the result onto path."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)
    return path


def write_mesh(out, stem, vertices, faces):
    """STEM.obj and STEM.ply of the camera-frame mesh (trimesh, vertices kept as given)."""
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    return [_atomic(out / f"{stem}.{ext}", lambda p, e=ext: mesh.export(str(p), file_type=e))
            for ext in ("obj", "ply")]


def write_params(out, stem, pred, body, cameras, image_shape, person, box, source, prefix,
                 step):
    """STEM.json: the prediction's body-model parameters, camera and boxes (documented keys)."""
    pose = geometry.matrix_to_axis_angle(tf.constant(pred["rotmats"])).numpy()
    K_full, K_crop = cameras
    payload = {
        "image": {"width": int(image_shape[1]), "height": int(image_shape[0])},
        "pose": {name: pose[j].tolist() for j, name in enumerate(body.joint_names)},
        "pose_axis_angle": pose.tolist(),
        "joint_names": list(body.joint_names),
        "betas": pred["betas"].tolist(),
        "transl": pred["transl"].tolist(),
        "camera": {"K": K_full.tolist(), "focal": float(K_full[0, 0]), "K_crop": K_crop.tolist(),
                   "convention": "pixels: origin at the top-left image corner, u right, v down; "
                                 "camera frame: x right, y down, z forward, metres"},
        "bbox": {"xywh": [float(v) for v in person], "source": source,
                 "crop": box.tolist()},
        "checkpoint": {"prefix": str(prefix), "step": int(step)},
    }
    return _atomic(out / f"{stem}.json",
                   lambda p: p.write_text(json.dumps(payload, indent=2) + "\n"))


def write_pictures(out, stem, image, vertices, faces, K_full, person):
    """STEM_overlay.png (mesh over the photo, person box in green) and STEM_side.png."""
    from data_pipelines.synthetic import renderer  # only the pictures need it

    h, w = image.shape[:2]
    over = np.ascontiguousarray(renderer.overlay_mesh(image, vertices, faces, K_full,
                                                      cull_backfaces=False))
    x, y, bw, bh = (int(round(v)) for v in person)
    cv2.rectangle(over, (x, y), (x + bw, y + bh), (0.2, 0.9, 0.2), max(1, round(max(h, w) / 300)))
    side = renderer.render_mesh(renderer.rotate_about_center(vertices, 90.0), faces, K_full, h, w,
                                cull_backfaces=False, background=(1.0, 1.0, 1.0))
    paths = []
    for name, rgb in ((f"{stem}_overlay.png", over), (f"{stem}_side.png", side.image)):
        bgr = cv2.cvtColor((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
        paths.append(_atomic(out / name, lambda p, b=bgr: _imwrite(p, b)))
    return paths


def _imwrite(path, bgr):
    if not cv2.imwrite(str(path), bgr):
        raise OSError(f"could not write {path}")


def run(args):
    """Checks every input, loads the model once, then writes the outputs of each image."""
    for p in args.images:
        check_image(p)
    stems = [Path(p).stem for p in args.images]
    if len(set(stems)) < len(stems):
        raise DemoError("two input images share a file name (outputs are named after it); "
                        "rename or run them separately")
    if not Path(args.ckpt).exists() and args.ckpt == DEFAULT_CKPT:
        raise FileNotFoundError(f"no demo model in {DEFAULT_CKPT}: train one with `make demo`, "
                                "or pass --ckpt WORKDIR of a pose run")
    workdir, prefix, config = open_checkpoint(args.ckpt)
    _, model, step = checkpoints.restore(prefix)
    body = pose.body_model(config)
    size = int(config.data.image_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in map(Path, args.images):
        image = read_image(path)
        h, w = image.shape[:2]
        person, source = args.bbox, "bbox"
        if person is None:
            person, source = detect_person(image), "hog"
        if person is None:
            print(f"warning: {path}: no person found by the HOG detector; using the whole "
                  "image (pass --bbox x,y,w,h to choose)", file=sys.stderr)
            person, source = (0.0, 0.0, float(w), float(h)), "whole_image"
        box = crop_box(person)
        K_full = full_intrinsics(w, h)
        crop, K_crop = prepare_crop(image, K_full, box, size)
        pred = predict(model, crop, K_crop)
        stem = path.stem
        written += write_mesh(out, stem, pred["vertices"], body.faces)
        written.append(write_params(out, stem, pred, body, (K_full, K_crop), image.shape, person,
                                    box, source, prefix, step))
        try:
            written += write_pictures(out, stem, image, pred["vertices"], body.faces, K_full,
                                      person)
        except Exception as err:  # noqa: BLE001  pictures are optional, the mesh is not
            print(f"warning: {path}: rendering failed ({type(err).__name__}: {err}); the mesh "
                  "and parameters were written", file=sys.stderr)
    for p in written:
        print(p)
    return written


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except (FileNotFoundError, DemoError, CheckpointError, ConfigError, EvalError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
