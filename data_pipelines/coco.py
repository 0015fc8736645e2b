"""COCO person keypoints (json + image folder) -> 2D-only schema examples for weak supervision.

One example per annotated person: a square crop around the person's box (SPIN's choice: side =
1.2 * max(w, h), centred on the box), kp2d = the 17 COCO keypoints in crop pixels with
visibility 1 for every labelled keypoint (COCO v = 1 occluded or 2 visible) and 0 otherwise;
K = the default camera of the full image (focal sqrt(W^2+H^2), principal point at the centre)
mapped to the crop; j3d, markers and body parameters are zero with has_* = 0.
COCO keypoints are integer pixel indices, so 0.5 is added to put them in the project's
corner-origin pixel convention (as detectron2 does). Persons marked iscrowd, or with fewer than
`min_keypoints` labelled keypoints, are skipped.
"""
import json
import os

import numpy as np

from data_pipelines import schema
from data_pipelines.source import FileSource

SPLIT_FILES = {"train": ("annotations/person_keypoints_train2017.json", "train2017"),
               "test": ("annotations/person_keypoints_val2017.json", "val2017")}
WHERE = ("the COCO 2017 keypoint annotations (annotations/person_keypoints_*.json) and the "
         "image folders (train2017/, val2017/) from cocodataset.org")
BOX_FACTOR = 1.2  # crop side / longest box side (SPIN's COCO preprocessing)


def split_paths(data_dir, split):
    """(json path, image folder) of a split under `data_dir`; the json must exist."""
    rel_json, rel_images = SPLIT_FILES["train" if split == "train" else "test"]
    path = os.path.join(data_dir, rel_json)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"coco: {path} not found; put {WHERE} in {data_dir}")
    return path, os.path.join(data_dir, rel_images)


def load_json(path):
    """The parsed annotation file; clear errors for a missing file, bad json or missing keys."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found; put {WHERE} there")
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid json ({err}); re-download it") from err
    missing = [k for k in ("images", "annotations") if k not in data]
    if missing:
        raise ValueError(f"{path}: missing keys {', '.join(missing)} (a COCO keypoint file "
                         "has images and annotations)")
    return data


def labels(data, min_keypoints=1):
    """Annotation dict -> FileSource label arrays, one row per kept person."""
    files = {img["id"]: img["file_name"] for img in data["images"]}
    rows = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) or "keypoints" not in ann or ann["image_id"] not in files:
            continue
        kp = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
        vis = (kp[:, 2] > 0).astype(np.float32)
        if vis.sum() < min_keypoints:
            continue
        x, y, w, h = ann["bbox"]
        kp2d = np.concatenate([(kp[:, :2] + 0.5) * vis[:, None], vis[:, None]], axis=1)
        rows.append((files[ann["image_id"]], (x + w / 2.0, y + h / 2.0),
                     BOX_FACTOR * max(w, h) / 200.0, kp2d))
    n = len(rows)
    return {
        "imgname": np.array([r[0] for r in rows], dtype=str),
        "center": np.array([r[1] for r in rows], np.float32).reshape(n, 2),
        "scale": np.array([r[2] for r in rows], np.float32),
        "kp2d": np.array([r[3] for r in rows], np.float32).reshape(n, 17, 3),
        "K": np.zeros((n, 3, 3), np.float32), "K_given": np.zeros(n, np.float32),
    }


def source(json_path, image_root, image_size=480, sizes=schema.LabelSizes(), min_keypoints=1,
           name="coco"):
    """A FileSource over a COCO keypoint file; clear error when no person is left."""
    rows = labels(load_json(json_path), min_keypoints)
    if not len(rows["imgname"]):
        raise ValueError(f"{json_path}: no person annotation with >= {min_keypoints} labelled "
                         "keypoints (is it a person_keypoints file?)")
    return FileSource(name, image_root, rows, image_size, sizes)
