"""BlazePose's person detector (pose_detection.tflite) decoded as MediaPipe's graph decodes it.

Facts taken from MediaPipe's pose_detection_cpu.pbtxt and pose_detection_to_roi.pbtxt (0.10.x);
the code is ours, in NumPy:
- input: the whole image letterboxed (aspect ratio kept, zero border) to 224x224 RGB in [-1, 1];
- SSD anchors (SsdAnchorsCalculator): 5 layers, strides 8, 16, 32, 32, 32, aspect ratio 1 plus
  the interpolated scale, fixed anchor size, offset 0.5 -> 2 anchors per cell of the 28x28 map,
  2 of the 14x14 map and 6 (three layers of stride 32 share one 7x7 map) = 2254 anchors;
- decoding (TensorsToDetectionsCalculator): 12 numbers per anchor, x before y, box centre and
  size plus 4 keypoints, all divided by 224 and offset by the anchor centre; score =
  sigmoid(clip(logit, -100, 100)), kept when >= 0.5;
- weighted non-maximum suppression, IoU threshold 0.3: each kept detection is the
  score-weighted mean of the boxes and keypoints it suppresses, with the best one's score;
- rotated region of interest (AlignmentPointsRectsCalculator + RectTransformationCalculator):
  centre = keypoint 0 (mid-hip), side = 2 |kp1 - kp0| (kp1 encodes the body's size and
  direction), rotation = pi/2 - atan2(-(y1 - y0), x1 - x0) so the hips-to-kp1 direction points
  up in the ROI, then the square side scaled by 1.25.
Keypoints 2, 3 are the upper-body pair (mid-shoulder, its circle point); unused here.
"""
import math
from dataclasses import dataclass

import numpy as np

INPUT_SIZE = 224
STRIDES = (8, 16, 32, 32, 32)
ANCHORS_PER_LAYER = 2          # aspect ratio 1.0 + the interpolated-scale anchor
MIN_SCORE = 0.5
NMS_IOU = 0.3
ROI_SCALE = 1.25


@dataclass
class Detection:
    """One person: `score`, `box` [x0, y0, x1, y1] (image pixels, the detector's face-centred
    box) and `keypoints` (4, 2) image pixels."""
    score: float
    box: np.ndarray
    keypoints: np.ndarray


@dataclass
class Roi:
    """A square rotated region: centre (x, y) and side in pixels, rotation in radians (the
    ROI's up axis points at image direction (sin r, -cos r))."""
    center: np.ndarray
    side: float
    rotation: float


def ssd_anchors():
    """(2254, 2) anchor centres (x, y) in [0, 1], in the order of the model's output rows."""
    out, layer = [], 0
    while layer < len(STRIDES):
        stride, count = STRIDES[layer], 0
        while layer < len(STRIDES) and STRIDES[layer] == stride:  # same-stride layers share a map
            count += ANCHORS_PER_LAYER
            layer += 1
        cells = math.ceil(INPUT_SIZE / stride)
        y, x = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(x + 0.5) / cells, (y + 0.5) / cells], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, count, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def letterbox(width, height):
    """(scale (2,), offset (2,)) with input pixel = scale * image pixel + offset (corner
    convention): the image resized to fit 224 x 224 (whole pixels), centred, zero border."""
    s = INPUT_SIZE / max(width, height)
    size = np.maximum(1, np.round(np.array([width, height]) * s))
    return size / np.array([width, height]), (INPUT_SIZE - size) // 2


def decode(raw_boxes, raw_scores, anchors, min_score=MIN_SCORE):
    """Model outputs (N, 12), (N, 1) -> (scores (M,), boxes (M, 4) x0 y0 x1 y1, keypoints
    (M, 4, 2)), normalised input coordinates, for the anchors scoring >= min_score."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores[:, 0].astype(np.float64), -100.0, 100.0)))
    keep = scores >= min_score
    raw, anc = raw_boxes[keep] / INPUT_SIZE, anchors[keep]
    centre, size = raw[:, 0:2] + anc, raw[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = raw[:, 4:12].reshape(-1, 4, 2) + anc[:, None]
    return scores[keep], boxes, keypoints


def iou(box, boxes):
    """IoU of box (4,) with boxes (N, 4), both [x0, y0, x1, y1]."""
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def weighted_nms(scores, boxes, keypoints, threshold=NMS_IOU):
    """MediaPipe's WEIGHTED suppression -> list of (score, box, keypoints), best first."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        best = order[0]
        group = order[iou(boxes[best], boxes[order]) > threshold]
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kps = (keypoints[group] * w[:, :, None]).sum(0) / w.sum()
        out.append((float(scores[best]), box, kps))
        order = order[~np.isin(order, group)]
    return out


def roi_of(keypoints):
    """The landmark model's rotated square ROI from a detection's keypoints (4, 2) pixels."""
    (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
    rotation = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
    rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    side = 2.0 * math.hypot(x1 - x0, y1 - y0) * ROI_SCALE
    return Roi(np.array([x0, y0], np.float64), side, rotation)


def preprocess(rgb):
    """RGB uint8 (H, W, 3) -> (1, 224, 224, 3) float32 in [-1, 1], letterboxed (area
    averaging when shrinking, so huge photos do not alias)."""
    import cv2
    h, w = rgb.shape[:2]
    scale, offset = letterbox(w, h)
    nw, nh = (int(v) for v in np.round(scale * [w, h]))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else
                       cv2.INTER_LINEAR)
    x0, y0 = (int(v) for v in offset)
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    canvas[y0:y0 + nh, x0:x0 + nw] = small
    return (canvas.astype(np.float32) / 127.5 - 1.0)[None]


def detections(raw_boxes, raw_scores, width, height, anchors):
    """Model outputs of one image of width x height -> [Detection] in image pixels, best first."""
    scores, boxes, kps = decode(raw_boxes, raw_scores, anchors)
    scale, offset = letterbox(width, height)
    to_image = lambda p: (p * INPUT_SIZE - offset) / scale  # noqa: E731
    out = []
    for score, box, kp in weighted_nms(scores, boxes, kps):
        out.append(Detection(score, to_image(box.reshape(2, 2)).reshape(4), to_image(kp)))
    return out
