"""The real-photo evaluation set: its photos, where they come from, and its hand annotations.

Photos whose licence allows it (public domain, CC0) are committed in eval/real_photos/ with
annotations.json and a README giving each one's origin, licence and SHA-256. The others ship in
the ultralytics 8.3.0 wheel, whose licence (AGPL-3.0) says nothing about the photos' own rights,
so they are not redistributed: `fetch()` (`make photos`, `python tools/eval_photos.py --fetch`)
takes them from the pinned wheel, SHA-256 checked, into `<cache>/real_photos/`, and derives the
cropped photo from them there. Tests never use these photos (they use rendered people).
"""
import json
import math
from pathlib import Path

from eval import pinned_wheel
from pose_era import constants
from pose_era.body.cache import cache_dir as _body_cache_dir
from pose_era.io import sha256_of

COMMITTED = Path(__file__).resolve().parent / "real_photos"
ANNOTATIONS = COMMITTED / "annotations.json"
FETCH_COMMAND = "make photos"
REQUIREMENT = "ultralytics==8.3.0"
WHEEL = "ultralytics-8.3.0-py3-none-any.whl"
WHEEL_SHA256 = "3137c4921c18c8ddf610f64f1badc2dad2a9fd182e10218c2bbb29caee308b9e"
MEMBERS = {  # file name -> (path inside the wheel, SHA-256)
    "bus.jpg": ("ultralytics/assets/bus.jpg",
                "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63"),
    "zidane.jpg": ("ultralytics/assets/zidane.jpg",
                   "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb"),
}
# file name -> (source file, crop box x0, y0, x1, y1 in its pixels): a person cut by the frame
# at the thighs, made from a full-body photo (Pillow's crop, saved as PNG)
DERIVED = {"bus_cut.png": ("bus.jpg", (0, 340, 420, 715))}


class PhotoSetError(ValueError):
    """A missing or altered photo, or an annotation file that cannot be used; one line."""


def fetched_dir():
    """`$POSE_ERA_CACHE/real_photos/` (default `<repo>/cache/real_photos/`)."""
    return _body_cache_dir().parent / "real_photos"


def photo_dirs():
    """Where the set's photos are looked for: the committed ones, then the fetched ones."""
    return [COMMITTED, fetched_dir()]


def fetch(log=print):
    """Puts the photos that are not committed into fetched_dir() (idempotent); returns it."""
    from PIL import Image

    out = pinned_wheel.extract(REQUIREMENT, WHEEL, WHEEL_SHA256, MEMBERS, fetched_dir(),
                               log=log)
    for name, (source, box) in DERIVED.items():
        if not (out / name).is_file():
            with Image.open(out / source) as im:
                im.crop(box).save(out / f".{name}")
            (out / f".{name}").replace(out / name)
    log(f"real photos: in {out}")
    return out


def _fail(path, what):
    raise PhotoSetError(f"{path}: {what}")


def _pair(value):
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value))


def _check_person(path, where, person):
    if not isinstance(person, dict) or not isinstance(person.get("name"), str):
        _fail(path, f"{where}: a person needs a 'name'")
    where = f"{where}, {person['name']}"
    box = person.get("box")
    if not (isinstance(box, list) and len(box) == 4 and _pair(box[:2]) and _pair(box[2:])
            and box[2] > box[0] and box[3] > box[1]):
        _fail(path, f"{where}: 'box' must be [x0, y0, x1, y1] with x1 > x0 and y1 > y0")
    keypoints = person.get("keypoints")
    if not isinstance(keypoints, dict):
        _fail(path, f"{where}: 'keypoints' must be {{joint name: [u, v]}}")
    outside = person.get("outside", [])
    names = list(keypoints) + list(outside) + list(person.get("occluded", []))
    unknown = [n for n in names if n not in constants.COCO17_NAMES]
    if unknown:
        _fail(path, f"{where}: unknown joint {unknown[0]!r} (COCO-17 names: nose, left_eye, ...)")
    if not all(_pair(v) for v in keypoints.values()):
        _fail(path, f"{where}: each keypoint must be [u, v] in pixels")
    if set(keypoints) & set(outside):
        _fail(path, f"{where}: a joint is both annotated in the photo and outside it")


def load_annotations(path=ANNOTATIONS):
    """The annotation file's photos: [{file, people: [{name, box, keypoints, outside, ...}],
    ...}]; PhotoSetError (one line) when it is missing or malformed."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise PhotoSetError(f"{path}: no such annotation file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PhotoSetError(f"{path}: not a readable JSON file ({err})") from None
    photos = doc.get("photos") if isinstance(doc, dict) else None
    if not isinstance(photos, list) or not photos:
        _fail(path, "expected {\"photos\": [{\"file\": ..., \"people\": [...]}, ...]}")
    for photo in photos:
        if not isinstance(photo, dict) or not isinstance(photo.get("file"), str):
            _fail(path, "each photo needs a 'file'")
        if not isinstance(photo.get("people"), list):
            _fail(path, f"{photo['file']}: 'people' must be a list ([] for no person)")
        for person in photo["people"]:
            _check_person(path, photo["file"], person)
    if len({p["file"] for p in photos}) < len(photos):
        _fail(path, "a photo is listed twice")
    return photos


def locate(photo, dirs):
    """Path of a photo of the annotation file in the first of dirs that has it, its SHA-256
    checked when the annotation pins one; PhotoSetError otherwise."""
    for d in dirs:
        path = Path(d) / photo["file"]
        if path.is_file():
            if photo.get("sha256") and sha256_of(path) != photo["sha256"]:
                raise PhotoSetError(f"{path}: not the photo that was annotated (SHA-256 "
                                    f"{sha256_of(path)[:12]}..., expected "
                                    f"{photo['sha256'][:12]}...)")
            return path
    hint = f"; run `{FETCH_COMMAND}` once" if photo.get("fetched") else ""
    raise PhotoSetError(f"{photo['file']}: not found in {', '.join(map(str, dirs))}{hint}")
