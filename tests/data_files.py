"""Small dataset files in the exact real layouts (SPIN npz, COCO json, images) for the data tests.

Images are black with Gaussian blobs at chosen pixel positions (corner-origin convention), so a
test can find where a labelled point ended up in a crop by the blob's intensity centroid.
"""
import json
import os

import cv2
import numpy as np

from pose_era import constants

WIDTH, HEIGHT = 320, 240
K_FULL = np.array([[400.0, 0.0, 150.0], [0.0, 410.0, 125.0], [0.0, 0.0, 1.0]])


def write_image(path, blobs=(), width=WIDTH, height=HEIGHT, sigma=2.5, value=1.0):
    """An RGB image (PNG or JPEG by suffix) with a Gaussian blob at each (u, v)."""
    u = np.arange(width) + 0.5
    v = np.arange(height) + 0.5
    img = np.zeros((height, width), np.float64)
    for bu, bv in blobs:
        img += value * np.exp(-((u[None] - bu) ** 2 + (v[:, None] - bv) ** 2) / (2 * sigma ** 2))
    rgb = np.clip(np.stack([img, 0.5 * img, 0.25 * img], -1) * 255, 0, 255).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])


def blob_centroid(image, u, v, radius=6):
    """Intensity centroid (corner convention) of channel 0 within `radius` px of (u, v)."""
    img = np.asarray(image)[..., 0].astype(np.float64)
    x0, x1 = int(max(u - radius, 0)), int(min(u + radius, img.shape[1]))
    y0, y1 = int(max(v - radius, 0)), int(min(v + radius, img.shape[0]))
    patch = img[y0:y1, x0:x1]
    ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5
    return np.array([(patch * xs).sum(), (patch * ys).sum()]) / patch.sum()


def project(points, K):
    p = points @ np.asarray(K, np.float64).T
    return p[..., :2] / p[..., 2:3]


def random_joints(rng, n):
    """(n, 24, 3) camera-frame joints of a person about 4 m in front of the camera."""
    root = np.array([-0.2, 0.1, 4.0]) + rng.uniform(-0.2, 0.2, (n, 1, 3))
    return root + rng.uniform(-0.6, 0.6, (n, 24, 3)) * np.array([1.0, 1.5, 0.3])


def spin_npz(directory, n=3, seed=0, ext=".png", with_K=True, extra=None, blob_joint=None,
             image_names=None):
    """A SPIN-layout npz (imgname, center, scale, S (N,24,4), part (N,24,3)) + its images.

    Joints are random and absolute (not root-centred) so that they project onto the images;
    `part` is their projection with K_FULL. A blob is drawn at every joint's projection (or
    only at `blob_joint`). Returns the arrays written.
    """
    rng = np.random.default_rng(seed)
    joints = random_joints(rng, n)
    part2d = project(joints, K_FULL)
    names = image_names or [f"images/S9_Walking_1.xyz_{i:06d}{ext}" for i in range(n)]
    lo, hi = part2d.min(axis=1), part2d.max(axis=1)
    center = (lo + hi) / 2
    scale = 1.2 * (hi - lo).max(axis=1) / 200.0
    S = np.concatenate([joints, np.ones((n, 24, 1))], axis=-1)
    part = np.concatenate([part2d, np.ones((n, 24, 1))], axis=-1)
    for i, name in enumerate(names):
        blobs = part2d[i] if blob_joint is None else part2d[i, [blob_joint]]
        write_image(os.path.join(directory, name), blobs)
    arrays = dict(imgname=np.array(names), center=center, scale=scale, S=S, part=part)
    if with_K:
        arrays["K"] = np.repeat(K_FULL[None], n, axis=0)
    arrays.update(extra or {})
    np.savez(os.path.join(directory, "data.npz"), **arrays)
    return arrays


def coco_json(directory):
    """COCO person keypoints: 2 images, 3 persons (one with unlabelled keypoints) + 1 crowd.

    Returns (json path, image folder, annotations list).
    """
    rng = np.random.default_rng(1)
    images = [{"id": 7, "file_name": "000007.jpg", "width": WIDTH, "height": HEIGHT},
              {"id": 9, "file_name": "000009.jpg", "width": WIDTH, "height": HEIGHT}]
    anns = []
    for ann_id, image_id in ((1, 7), (2, 7), (3, 9)):
        kp = np.zeros((17, 3))
        kp[:, 0] = rng.integers(40, 280, 17)
        kp[:, 1] = rng.integers(30, 210, 17)
        kp[:, 2] = rng.choice([1, 2], 17)
        if ann_id == 2:
            kp[[0, 3, 4], :] = 0  # unlabelled: COCO writes 0, 0, 0
        lo, hi = kp[kp[:, 2] > 0, :2].min(0), kp[kp[:, 2] > 0, :2].max(0)
        anns.append({"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                     "bbox": [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]),
                              float(hi[1] - lo[1])],
                     "keypoints": kp.astype(int).flatten().tolist(),
                     "num_keypoints": int((kp[:, 2] > 0).sum())})
    anns.append({"id": 4, "image_id": 9, "category_id": 1, "iscrowd": 1,
                 "bbox": [0, 0, 10, 10], "keypoints": [0] * 51, "num_keypoints": 0})
    folder = os.path.join(directory, "val2017")
    for img in images:
        kps = [np.reshape(a["keypoints"], (17, 3)) for a in anns if a["image_id"] == img["id"]]
        blobs = [(x + 0.5, y + 0.5) for kp in kps for x, y, vis in kp if vis > 0]
        write_image(os.path.join(folder, img["file_name"]), blobs)
    path = os.path.join(directory, "annotations", "person_keypoints_val2017.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": anns,
                   "categories": [{"id": 1, "name": "person",
                                   "keypoints": list(constants.COCO17_NAMES)}]}, f)
    return path, folder, anns[:3]
