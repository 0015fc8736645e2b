"""Runs the two BlazePose stages on an image: detector -> rotated ROI -> landmark model.

One TFLite interpreter per model, made once (tf.lite.Interpreter: TensorFlow's own, so no
new runtime; see BUILD_NOTES.md). A detection becomes a Person when the landmark model's
pose-presence score on its ROI is >= 0.5 (MediaPipe's threshold).

The detector runs on the whole photo first, as MediaPipe does. When that gives fewer people
than asked for (every person, or one when it found nobody), it also runs on square tiles at
several scales (multiscale.py: small people on a large photo), each tile's people mapped back
to the photo; those smaller than multiscale.large_enough are dropped, and a tile's person is
added only when it is none of those already found (multiscale.add_new: the whole photo's
people first, then the tiles' by detector score x pose presence).
"""
import warnings
from dataclasses import dataclass

import numpy as np

from eval.blazepose import assets, detector, keypoints, landmarks, multiscale


@dataclass
class Person:
    """score: detector confidence; presence: landmark model's pose score; roi: detector.Roi;
    landmarks (33, 5) image x, y, z (pixels), visibility, presence; world (33, 3) metres."""
    score: float
    presence: float
    roi: detector.Roi
    landmarks: np.ndarray
    world: np.ndarray

    def box(self, margin=0.1):
        """(x, y, w, h) around the 33 landmarks, each side pushed out by margin x the longer
        side (the landmarks stop at the eyes and the toes, not the head top)."""
        lo, hi = self.landmarks[:, :2].min(0), self.landmarks[:, :2].max(0)
        pad = margin * float(np.max(hi - lo))
        lo, hi = lo - pad, hi + pad
        return tuple(float(v) for v in (*lo, *(hi - lo)))

    def coco17(self):
        """(17, 3) COCO-17 image pixels + visibility in [0, 1]."""
        xy, vis = keypoints.convert(self.landmarks[:, :2], self.landmarks[:, 3], keypoints.COCO17)
        return np.concatenate([xy, vis[:, None]], axis=1).astype(np.float32)

    def coco17_presence(self):
        """(17,) COCO-17 presence: how likely each keypoint is inside the image at all."""
        return keypoints.convert(self.landmarks[:, :2], self.landmarks[:, 4],
                                 keypoints.COCO17)[1]

    def world_camera(self, K):
        """(33, 3) world landmarks (metres, origin between the hips) with the axes of the
        photo's camera of intrinsics K (landmarks.view_rotation)."""
        return self.world @ landmarks.view_rotation(K, self.roi.center).T.astype(np.float32)

    def world_coco17(self, K):
        """(17, 4) COCO-17 from the world landmarks in the camera's axes + visibility."""
        xyz, vis = keypoints.convert(self.world_camera(K), self.landmarks[:, 3],
                                     keypoints.COCO17)
        return np.concatenate([xyz, vis[:, None]], axis=1).astype(np.float32)

    def world_h36m17(self, K):
        """(17, 3) H36M-17 from the world landmarks in the camera's axes."""
        return keypoints.convert(self.world_camera(K), self.landmarks[:, 3],
                                 keypoints.H36M17)[0]


def _interpreter(name, num_threads):
    import tensorflow as tf
    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": see BUILD_NOTES.md
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(model_path=str(assets.model_path(name)),
                                     num_threads=num_threads)
    interp.allocate_tensors()
    return interp


def _run(interp, tensor):
    interp.set_tensor(interp.get_input_details()[0]["index"], tensor)
    interp.invoke()
    return {d["name"]: interp.get_tensor(d["index"])[0] for d in interp.get_output_details()}


class BlazePose:
    """Callable: RGB uint8 (H, W, 3) -> [Person], most confident detection first."""

    def __init__(self, num_threads=2):
        self.detector = _interpreter("pose_detection.tflite", num_threads)
        self.landmarker = _interpreter("pose_landmark_full.tflite", num_threads)
        self.anchors = detector.ssd_anchors()

    def detect(self, rgb):
        """[detector.Detection] in image pixels, best first."""
        h, w = rgb.shape[:2]
        out = _run(self.detector, detector.preprocess(rgb))
        return detector.detections(out["Identity"], out["Identity_1"], w, h, self.anchors)

    def landmarks(self, rgb, roi):
        """(presence, landmarks (33, 5), world (33, 3)) of the person in `roi`."""
        out = _run(self.landmarker, landmarks.preprocess(rgb, roi))
        lm, world = landmarks.decode(out["Identity"], out["Identity_4"], roi)
        return float(np.ravel(out["Identity_1"])[0]), lm, world

    def people_from(self, rgb, dets):
        """[Person] of the detections whose ROI the landmark model rates a pose."""
        people = []
        for det in dets:
            roi = detector.roi_of(det.keypoints)
            presence, lm, world = self.landmarks(rgb, roi)
            if presence >= landmarks.MIN_PRESENCE:
                people.append(Person(det.score, presence, roi, lm, world))
        return people

    def tiled(self, rgb):
        """[Person] found on the tiles of multiscale.tiles (photo pixels), those too small for
        multiscale.large_enough left out; duplicates not merged."""
        h, w = rgb.shape[:2]
        dets = []
        for x0, y0, side in multiscale.tiles(w, h):
            tile = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side])
            for det in self.detect(tile):
                shift = np.array([x0, y0], np.float64)
                dets.append(detector.Detection(det.score, det.box + np.tile(shift, 2),
                                               det.keypoints + shift))
        return [p for p in self.people_from(rgb, dets)
                if multiscale.large_enough(p.landmarks, w, h)]

    def __call__(self, rgb, max_people=None):
        """[Person], most confident first: the whole photo's, then the tiles' when those are
        fewer than max_people (None: every person)."""
        people = self.people_from(rgb, self.detect(rgb)[:max_people])
        if max_people is not None and len(people) >= max_people:
            return people
        h, w = rgb.shape[:2]
        tiled = sorted(self.tiled(rgb), key=lambda p: -p.score * p.presence)
        people = multiscale.add_new(people, tiled, w, h, lambda p: p.landmarks)
        return sorted(people, key=lambda p: -p.score)[:max_people]
