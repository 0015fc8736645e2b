"""The demo's files for one person: mesh (.obj/.ply), parameters JSON, overlay and side PNGs.

Written atomically (temporary name, then rename). Keys of the JSON are documented in
docs/eval_demo.md. The pictures use the NumPy rasteriser (pose_era/renderer.py),
imported only here, so the model never depends on rendering. A small photo (make demo's 160 px
test crops) is drawn enlarged to MIN_PICTURE_SIDE, the mesh rendered at that size with the
camera scaled to match, so the pictures are readable and the mesh's edges sharp.
"""
import json

import cv2
import numpy as np
import tensorflow as tf
import trimesh

from eval.demo import MIN_VISIBILITY, project
from pose_era import constants, geometry
from pose_era.io import write_via_path

# COCO-17 limbs drawn on the overlay (index pairs into constants.COCO17_NAMES).
COCO_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13),
              (13, 15), (12, 14), (14, 16), (0, 1), (0, 2), (1, 3), (2, 4))
# H36M-17 limbs (SPIN's order) for the --compare skeletons.
H36M_LIMBS = ((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
              (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16))
MIN_PICTURE_SIDE = 480  # px: pictures of smaller photos are drawn enlarged to this
SIDE_DISTANCE = 10.0    # m: the side view's camera, far enough to be nearly orthographic


def write_mesh(out, stem, vertices, faces):
    """STEM.obj and STEM.ply of the camera-frame mesh (trimesh, vertices kept as given)."""
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    return [write_via_path(out / f"{stem}.{ext}", lambda p, e=ext: mesh.export(str(p), file_type=e))
            for ext in ("obj", "ply")]


def _listed(a):
    return None if a is None else np.asarray(a, np.float64).round(4).tolist()


def write_params(out, stem, person, body, image_shape, prefix, step):
    """STEM.json: body-model parameters, camera, boxes, keypoints, detector score, fit."""
    pred = person.pred
    pose = geometry.matrix_to_axis_angle(tf.constant(pred["rotmats"])).numpy()
    lm = person.landmarks
    payload = {
        "image": {"width": int(image_shape[1]), "height": int(image_shape[0])},
        "pose": {name: pose[j].tolist() for j, name in enumerate(body.joint_names)},
        "pose_axis_angle": pose.tolist(),
        "joint_names": list(body.joint_names),
        "betas": pred["betas"].tolist(),
        "transl": pred["transl"].tolist(),
        "camera": {"K": person.K_full.tolist(), "focal": float(person.K_full[0, 0]),
                   "K_crop": person.K_crop.tolist(),
                   "convention": "pixels: origin at the top-left image corner, u right, v down; "
                                 "camera frame: x right, y down, z forward, metres"},
        "bbox": {"xywh": [float(v) for v in person.box], "source": person.source,
                 "crop": person.crop.tolist()},
        "stages": list(person.stages),
        "detector": None if lm is None else {
            "score": None if np.isnan(lm.score) else float(lm.score),
            "pose_presence": float(lm.presence),
            "roi": {"center": lm.roi.center.tolist(), "side": float(lm.roi.side),
                    "rotation": float(lm.roi.rotation)}},
        "keypoints": None if person.keypoints is None else {
            "coco17": _listed(person.keypoints), "names": list(constants.COCO17_NAMES),
            "format": "x, y photo pixels, visibility in [0, 1]",
            "blazepose33": _listed(lm.landmarks),
            "blazepose33_format": "x, y, z (photo pixels; z relative), visibility, presence",
            "world33": _listed(lm.world)},
        "joints": {"coco17_2d": _listed(project(pred["coco17"], person.K_full)),
                   "coco17_3d": _listed(pred["coco17"]), "names": list(constants.COCO17_NAMES),
                   "format": "the mesh's COCO-17 joints: photo pixels x, y; camera frame "
                             "x, y, z metres"},
        "fit": person.fit,
        "world_agreement_mm": person.world_agreement_mm,
        "reliable": not person.unreliable_because,
        "unreliable_because": list(person.unreliable_because),
        "checkpoint": {"prefix": str(prefix), "step": int(step)},
    }
    return write_via_path(out / f"{stem}.json",
                  lambda p: p.write_text(json.dumps(payload, indent=2) + "\n"))


def _line_width(shape):
    return max(1, round(max(shape[:2]) / 300))


def draw_keypoints(image, keypoints, color=(1.0, 0.3, 0.1)):
    """COCO-17 points and limbs (visibility >= MIN_VISIBILITY) drawn on a float RGB image."""
    lw = _line_width(image.shape)
    ok = keypoints[:, 2] >= MIN_VISIBILITY
    pts = [tuple(int(round(v)) for v in p) for p in keypoints[:, :2]]
    for a, b in COCO_LIMBS:
        if ok[a] and ok[b]:
            cv2.line(image, pts[a], pts[b], color, lw, cv2.LINE_AA)
    for p, visible in zip(pts, ok):
        if visible:
            cv2.circle(image, p, 2 * lw, (1.0, 1.0, 0.2), -1, cv2.LINE_AA)
    return image


def _draw_skeleton(image, joints, K, color):
    pts = [tuple(int(round(v)) for v in p) for p in project(joints, K)]
    for a, b in H36M_LIMBS:
        cv2.line(image, pts[a], pts[b], color, _line_width(image.shape) * 2, cv2.LINE_AA)


def enlarged(image, K, min_side=MIN_PICTURE_SIDE):
    """(image, K, (sx, sy)): a photo whose longer side is below min_side resized up to it
    (bicubic) and its intrinsics scaled to match (pixel coordinates from the image's corner
    scale exactly: cv2.resize maps pixel centres the same way); others as they are."""
    h, w = image.shape[:2]
    s = min_side / max(h, w)
    if s <= 1.0:
        return image, K, (1.0, 1.0)
    new_w, new_h = max(1, round(w * s)), max(1, round(h * s))
    sx, sy = new_w / w, new_h / h
    big = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
    return big, np.diag([sx, sy, 1.0]).astype(np.float32) @ K, (sx, sy)


def side_view(vertices, size, margin=0.05):
    """(place, K, (height, width)): the side view of a mesh (N, 3) in camera-frame metres.
    `place` turns camera-frame points 90 degrees about the mesh's bounding-box centre and moves
    that centre SIDE_DISTANCE m straight ahead of the camera K, which frames the whole turned mesh
    on a canvas whose longer side is `size` (a margin, a fraction of it, on each side). A far
    camera, nearly orthographic: with the photo's own camera a portrait's unseen legs, turned
    towards it from a metre away, came out huge, and a body the photo cuts came out cut."""
    from pose_era import renderer  # only the pictures need it

    centre = (vertices.min(0) + vertices.max(0)) / 2

    def place(points):
        turned = renderer.rotate_about_center(points, 90.0, centre=centre)
        return turned - centre + np.array([0.0, 0.0, SIDE_DISTANCE], np.float32)

    xy = place(vertices)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    scale = (1 - 2 * margin) * size / max(float(np.max(hi - lo)), 1e-6)   # pixels per metre
    width, height = (max(1, int(round(v))) for v in (hi - lo) * scale + 2 * margin * size)
    f = scale * SIDE_DISTANCE
    mid = (lo + hi) / 2
    K = np.array([[f, 0, width / 2 - scale * mid[0]], [0, f, height / 2 - scale * mid[1]],
                  [0, 0, 1]], np.float32)
    return place, K, (height, width)


def write_pictures(out, stem, image, person, faces, compare=False):
    """STEM_overlay.png (mesh over the photo, person box in green, keypoints) and
    STEM_side.png (the whole mesh turned 90 degrees, seen from afar: `side_view`; with
    compare, our H36M-17 joints in red and BlazePose's world landmarks mapped to H36M-17 in the
    camera's axes, placed at our pelvis, in blue); both at least MIN_PICTURE_SIDE px on their
    longer side (`enlarged`)."""
    from pose_era import renderer  # only the pictures need it

    image, K, (sx, sy) = enlarged(image, person.K_full)
    h, w = image.shape[:2]
    vertices = person.pred["vertices"]
    over = np.ascontiguousarray(renderer.overlay_mesh(image, vertices, faces, K,
                                                      cull_backfaces=False))
    x, y, bw, bh = person.box
    x0, y0, x1, y1 = (int(round(v)) for v in (x * sx, y * sy, (x + bw) * sx, (y + bh) * sy))
    cv2.rectangle(over, (x0, y0), (x1, y1), (0.2, 0.9, 0.2), _line_width(over.shape))
    if person.keypoints is not None:
        draw_keypoints(over, person.keypoints * np.array([sx, sy, 1.0], np.float32))
    place, K_side, (side_h, side_w) = side_view(vertices, max(h, w))
    side = renderer.render_mesh(place(vertices), faces, K_side, side_h, side_w,
                                cull_backfaces=False, background=(1.0, 1.0, 1.0))
    side_image = np.ascontiguousarray(side.image)
    if compare:
        ours = person.pred["h36m17"]
        _draw_skeleton(side_image, place(ours), K_side, (0.9, 0.1, 0.1))
        if person.landmarks is not None:
            # BlazePose's origin: mid-hip
            theirs = person.landmarks.world_h36m17(person.K_full) + ours[0]
            _draw_skeleton(side_image, place(theirs), K_side, (0.1, 0.2, 0.9))
    paths = []
    for name, rgb in ((f"{stem}_overlay.png", over), (f"{stem}_side.png", side_image)):
        bgr = cv2.cvtColor((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
        paths.append(write_via_path(out / name, lambda p, b=bgr: _imwrite(p, b)))
    return paths


def _imwrite(path, bgr):
    if not cv2.imwrite(str(path), bgr):
        raise OSError(f"could not write {path}")
