"""The demo's pipeline on one photo: people -> crop -> network -> fit to the 2D keypoints.

Used by tools/demo.py (the CLI) and tools/bench_demo.py (its measurements), so both run the
same code. Steps (docs/eval_demo.md):
1. people: BlazePose (eval.blazepose) finds them and their 33 landmarks; with a given box
   (--bbox) the landmark model runs on a square ROI around that box instead of the detector's;
2. crop: a square 1.2 x the person box's longer side (SPIN's scaleFactor), resized to the
   network's input with the readers' warp, and its intrinsics (pose_era.geometry);
3. network: the pose model's prediction in the photo's camera frame (a keypoint-fed network,
   model.keypoint_input, also reads BlazePose's keypoints in its crop: `network_keypoints`);
4. fit (optional): eval.fitting refines pose, shape and translation to the COCO-17
   keypoints mapped from the landmarks and to their 3D world landmarks, in the crop's camera;
   keypoints outside the photo, or that BlazePose rates absent, are not fitted: their limbs
   take a natural pose and stay out of the photo; unseen keypoints at the photo's border
   (`maybe_cut_off`) are fitted, but their limbs start from the natural pose too;
5. check: a person whose keypoints are too few or whose fit ends far from them is marked
   unreliable, with the reasons (`unreliable_because`), so that no answer is silently wrong;
   every person with landmarks gets its 3D agreement with them (`world_agreement_mm`).
The camera of an unknown photo: focal sqrt(W^2 + H^2), principal point at the centre.
"""
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from data_pipelines import images
from data_pipelines.keypoint_noise import network_input
from eval.blazepose import Person as Landmarks
from eval.blazepose import detector as bp_detector
from eval.blazepose import landmarks as bp_landmarks
from models.pose_net import takes_keypoints
from pose_era import constants, geometry

ENLARGE = 1.2        # crop side = 1.2 x the person box's longer side (SPIN's scaleFactor)
BBOX_ROI_SCALE = 1.25  # landmark ROI around a given box: its longer side x this (MediaPipe's)

# When a result is unreliable (docs/eval_demo.md says why these numbers):
MIN_VISIBILITY = 0.5   # a keypoint counts as seen from this BlazePose visibility on (MediaPipe's
                       # drawing cut; the overlay draws the same ones), and only inside the
                       # photo: BlazePose rates keypoints just past the border visible too
BORDER_MARGIN = 0.1    # x the person box's longer side: an unseen keypoint this near the photo's
                       # border may be beyond it (docs/eval_demo.md, "Keypoints at the border")
MIN_SEEN = 6           # fewer seen COCO-17 keypoints: the five of the face alone cannot pass; the
                       # COCO reader skips people with fewer labels for the same reason
TORSO = tuple(constants.COCO17_NAMES.index(f"{side}_{part}") for part in ("shoulder", "hip")
              for side in ("left", "right"))
MIN_TORSO = 2          # one torso point fixes neither the torso's size nor its tilt
LIMB12 = tuple(constants.COCO17_NAMES.index(f"{side}_{part}") for part in (
    "shoulder", "elbow", "wrist", "hip", "knee", "ankle") for side in ("left", "right"))
MAX_RESIDUAL = 0.05    # mean distance of the seen keypoints from the fitted body's, as a fraction
                       # of the person box's longer side: converged fits on rendered people end
                       # at 0.5-1.7 %, the network's own guesses at 2-22 %


class DemoError(ValueError):
    """A problem with the demo's inputs; the message says what to do."""


def image_size(path):
    """(width, height) after EXIF rotation; DemoError unless the whole file decodes (a
    truncated JPEG/PNG is an error, not a grey stripe). Cheap enough to run on every input
    before the model loads."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            swap = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)   # EXIF orientation
            im.load()
            w, h = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as err:
        raise DemoError(f"{path}: not a readable image ({str(err).splitlines()[0]})") from None
    return (h, w) if swap else (w, h)


def read_image(path):
    """RGB uint8 (H, W, 3): EXIF-rotated, grayscale and 16-bit converted, alpha dropped."""
    try:
        return read_image_bytes(Path(path).read_bytes())
    except DemoError:
        raise DemoError(f"{path}: the image could not be decoded by OpenCV") from None


def read_image_bytes(data):
    """RGB uint8 (H, W, 3) of encoded image bytes (JPEG, PNG, ...)."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DemoError("the image bytes could not be decoded")
    return np.ascontiguousarray(bgr[..., ::-1])


def check_bbox(bbox, width, height, path):
    """DemoError when the box (x, y, w, h) does not overlap the image at all."""
    x, y, w, h = bbox
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise DemoError(f"{path}: --bbox {x:g},{y:g},{w:g},{h:g} lies entirely outside the "
                        f"{width}x{height} image")


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
    """The network's input: `box` of the photo (float RGB in [0, 1]) resized to size x size,
    and its intrinsics.

    A photo much larger than the crop is first shrunk with area averaging so the bilinear warp
    never minifies more than 2x (it would alias); K and the box are scaled with it, which
    leaves the crop's intrinsics exactly crop_intrinsics(K_full, box, size).
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


def to_crop(keypoints, box, size):
    """(N, 3) full-image pixels + weight -> crop pixels; weight 0 outside the crop."""
    affine = geometry.crop_intrinsics(tf.eye(3), box, size).numpy()
    uv = keypoints[:, :2] @ affine[:2, :2].T + affine[:2, 2]
    inside = np.all((uv >= 0) & (uv <= size), axis=1)
    return np.concatenate([uv, (keypoints[:, 2] * inside)[:, None]], 1).astype(np.float32)


def in_photo(keypoints, image_shape):
    """(17,) bool: the keypoints (17, 2+) photo pixels inside the photo of `image_shape`."""
    h, w = image_shape[:2]
    x, y = keypoints[:, 0], keypoints[:, 1]
    return (x >= 0) & (x < w) & (y >= 0) & (y < h)


def seen_keypoints(keypoints, image_shape, absent=None):
    """(17,) bool: the COCO-17 keypoints (17, 3) photo pixels + visibility the demo counts as
    seen: visibility >= MIN_VISIBILITY, inside the photo of `image_shape` (H, W, ...), and not
    rated absent (absent (17,) bool, BlazePose's presence < 0.5, when given)."""
    seen = (keypoints[:, 2] >= MIN_VISIBILITY) & in_photo(keypoints, image_shape)
    if absent is not None:
        seen &= ~np.asarray(absent, bool)
    return seen


def maybe_cut_off(keypoints, image_shape, box, absent=None):
    """(17,) bool: keypoints drawn inside the photo but not seen (`seen_keypoints`) and within
    BORDER_MARGIN x the box's longer side (box x, y, w, h) of its border. Why: where the photo
    cuts a person at the knees, BlazePose draws the knees at the border with visibility ~0.5;
    fitted from the network's guess for legs it did not see, they came out kicked forward
    (bus_cut.png); the fit starts those limbs from the natural pose instead."""
    h, w = image_shape[:2]
    x, y = keypoints[:, 0], keypoints[:, 1]
    border = np.minimum(np.minimum(x, w - x), np.minimum(y, h - y))
    return (in_photo(keypoints, image_shape) & ~seen_keypoints(keypoints, image_shape, absent)
            & (border < BORDER_MARGIN * max(box[2:])))


def network_keypoints(keypoints, absent, crop_xyxy, size, image_shape):
    """BlazePose's COCO-17 keypoints -> a keypoint-fed network's input (17, 3) in its crop
    (data_pipelines.keypoint_noise.network_input: u / S, v / S, flag).

    keypoints (17, 3) photo pixels + visibility, or None (no landmarks: every keypoint absent);
    absent (17,) bool, keypoints BlazePose rates absent (presence < 0.5), or None. A keypoint is
    given (flag 1) when it is seen by the rule the rest of the demo uses (`seen_keypoints`, as
    `unreliable_because`, the overlay, the fit) and inside the crop. The training noise
    (configs/common_pose.py) was measured with this rule."""
    if keypoints is None:
        return np.zeros((17, 3), np.float32)
    seen = seen_keypoints(keypoints, image_shape, absent)
    crop = to_crop(np.concatenate([keypoints[:, :2], np.ones((17, 1))], 1), crop_xyxy, size)
    return network_input(crop[:, :2], seen, size).numpy()


@dataclass
class Person:
    """What the pipeline found and predicted for one person (NumPy arrays, no batch axis)."""
    box: tuple                      # (x, y, w, h) person box in photo pixels
    source: str                     # "blazepose" or "bbox"
    crop: np.ndarray                # [x0, y0, x1, y1] the network's crop
    K_full: np.ndarray
    K_crop: np.ndarray
    pred: dict                      # rotmats, betas, transl, vertices, h36m17, coco17, ...
    stages: list = field(default_factory=list)
    landmarks: object = None        # eval.blazepose.Person, when the landmarks ran
    keypoints: np.ndarray = None    # (17, 3) COCO-17 photo pixels + visibility
    network: dict = None            # the network's prediction when a fit replaced `pred`
    fit: dict = None                # reprojection errors (photo pixels), steps, reverted
    unreliable_because: list = field(default_factory=list)   # [] = no reason found
    world_agreement_mm: float = None  # world_agreement_mm(pred, landmarks), when they ran


def unreliable_because(keypoints, image_shape, box, fitted=None, absent=None):
    """Why a person's result should not be trusted, as sentences ([] = no reason found).

    keypoints: (17, 3) COCO-17 photo pixels + visibility, or None (no landmarks: nothing checks
    the network's guess); box (x, y, w, h); fitted: (17, 2) the fitted body's COCO-17 keypoints
    projected into the photo, when the fit ran; absent: (17,) bool, keypoints BlazePose rates
    absent from the photo wherever it drew them (not seen: the fit does not follow them)."""
    if keypoints is None:
        return ["BlazePose found no body, so no 2D keypoints check the network's guess"]
    xy = keypoints[:, :2]
    seen = seen_keypoints(keypoints, image_shape, absent)
    reasons = []
    if seen.sum() < MIN_SEEN:
        reasons.append(f"only {seen.sum()} of the 17 keypoints are seen in the photo (at least "
                       f"{MIN_SEEN} needed)")
    torso = int(seen[list(TORSO)].sum())
    if torso < MIN_TORSO:
        reasons.append(f"{f'only {torso}' if torso else 'none'} of the shoulders and hips "
                       f"are seen (at least {MIN_TORSO} needed to place the torso)")
    if fitted is not None and seen.any():
        residual = float(np.linalg.norm(fitted[seen] - xy[seen], axis=1).mean())
        side = max(box[2], box[3])
        if residual > MAX_RESIDUAL * side:
            reasons.append(f"the fitted body ends {residual:.0f} px from the seen keypoints on "
                           f"average ({residual / side:.0%} of the person box; at most "
                           f"{MAX_RESIDUAL:.0%})")
    return reasons


def project(points, K):
    """(N, 3) camera-frame points -> (N, 2) pixels of the camera K (3, 3)."""
    return geometry.project(tf.constant(points[None], tf.float32),
                            tf.constant(K[None], tf.float32)).numpy()[0]


def world_agreement_mm(coco17, world):
    """How far our 3D body is from BlazePose's world landmarks, an independent estimate
    learnt from real people: the mean distance (mm) of the 12 limb joints (LIMB12) after
    Procrustes alignment (scale, rotation, translation), coco17 (17, 3) and world (17, >=3)."""
    ours = tf.constant(np.asarray(coco17, np.float64)[None, list(LIMB12)])
    theirs = tf.constant(np.asarray(world, np.float64)[None, list(LIMB12), :3])
    aligned = geometry.procrustes_align(ours, theirs)
    return float(1000.0 * tf.reduce_mean(tf.norm(aligned - theirs, axis=-1)))


class Pipeline:
    """Callable: RGB uint8 photo -> [Person] (most confident first; [] = nobody found)."""

    def __init__(self, model, image_size, blazepose=None, fitter=None):
        self.model = model
        self.size = int(image_size)
        self.blazepose = blazepose
        self.fitter = fitter

    def people(self, rgb, bbox=None, all_people=False):
        """[(box, source, blazepose Person or None)]."""
        if bbox is not None:
            if self.blazepose is None:
                return [(tuple(bbox), "bbox", None)]
            x, y, w, h = bbox
            roi = bp_detector.Roi(np.array([x + w / 2, y + h / 2]),
                                  BBOX_ROI_SCALE * max(w, h), 0.0)
            presence, lm, world = self.blazepose.landmarks(rgb, roi)
            if presence < bp_landmarks.MIN_PRESENCE:  # no body in the box: nothing to fit
                return [(tuple(bbox), "bbox", None)]
            return [(tuple(bbox), "bbox", Landmarks(float("nan"), presence, roi, lm, world))]
        found = self.blazepose(rgb, None if all_people else 1)
        return [(p.box(), "blazepose", p) for p in found]

    def predict(self, rgb, box, K_full, keypoints=None, absent=None):
        """Crop + network: (crop box, K_crop, prediction dict). A keypoint-fed network
        (model.keypoint_input) is also given BlazePose's keypoints, keypoints (17, 3) photo
        pixels + visibility and absent (17,) bool (`network_keypoints`; None: all absent);
        other networks ignore them."""
        crop_xyxy = crop_box(box)
        crop, K_crop = prepare_crop(rgb.astype(np.float32) / 255.0, K_full, crop_xyxy,
                                    self.size)
        inputs = {"image": crop[None], "K": tf.constant(K_crop[None])}
        if takes_keypoints(self.model):
            inputs["keypoints"] = tf.constant(network_keypoints(keypoints, absent, crop_xyxy,
                                                                self.size, rgb.shape)[None])
        out = self.model(inputs, training=False)
        return crop_xyxy, K_crop, {k: np.asarray(v)[0] for k, v in out.items()}

    def fit(self, pred, K_crop, crop_xyxy, keypoints, world=None, image_shape=None, absent=None,
            unsure=None):
        """Fits pred to COCO-17 photo keypoints (17, 3) and, when given, BlazePose's world
        keypoints (17, 4) in the camera's axes. With the photo's shape (H, W, ...), keypoints
        outside the photo are kept outside it instead of fitted; `absent` (17,) bool marks
        keypoints BlazePose thinks are not in the photo wherever it drew them (presence below
        0.5): not fitted either; the limbs of both get a natural pose (eval.fitting), as do those
        of `unsure` (17,) bool keypoints (`maybe_cut_off`), which are still fitted. Returns
        (fitted dict, fit report)."""
        kp = to_crop(keypoints, crop_xyxy, self.size)
        frame = None
        if image_shape is not None:
            h, w = image_shape[:2]
            corners = to_crop(np.array([[0.0, 0.0, 1.0], [w, h, 1.0]]), crop_xyxy, self.size)
            frame = corners[:, :2].reshape(1, 4)
        out = self.fitter.fit(K_crop[None], kp[None], pred["rotmats"][None],
                              pred["betas"][None], pred["transl"][None],
                              None if world is None else world[None], frame,
                              None if absent is None else absent[None],
                              None if unsure is None else unsure[None])
        fitted = {k: np.asarray(v)[0] for k, v in out.items()}
        px = float(crop_xyxy[2] - crop_xyxy[0]) / self.size      # crop pixel -> photo pixels
        report = {"reprojection_error_px": float(fitted.pop("reprojection_error")) * px,
                  "start_reprojection_error_px": float(fitted.pop("start_error")) * px,
                  "steps": int(self.fitter.opt.steps), "reverted": bool(fitted.pop("reverted")),
                  "keypoints": "coco17"}
        return fitted, report

    def __call__(self, rgb, bbox=None, all_people=False, K_full=None, fit=True):
        h, w = rgb.shape[:2]
        K_full = full_intrinsics(w, h) if K_full is None else np.asarray(K_full, np.float32)
        results = []
        for box, source, lm in self.people(rgb, bbox, all_people):
            stages = ["detector"] if source == "blazepose" else ["bbox"]
            keypoints = world = absent = None
            if lm is not None:
                stages.append("landmarks")
                keypoints = lm.coco17()
                world = lm.world_coco17(K_full)
                absent = lm.coco17_presence() < bp_landmarks.MIN_PRESENCE
            crop_xyxy, K_crop, pred = self.predict(rgb, box, K_full, keypoints, absent)
            person = Person(box, source, crop_xyxy, K_full, K_crop, pred, stages, lm, keypoints)
            person.stages.append("network")
            fitted = None
            if fit and self.fitter is not None and person.keypoints is not None:
                person.network = pred
                unsure = maybe_cut_off(keypoints, rgb.shape, box, absent)
                person.pred, person.fit = self.fit(pred, K_crop, crop_xyxy, person.keypoints,
                                                   world, rgb.shape, absent, unsure)
                person.stages.append("fit")
                fitted = project(person.pred["coco17"], K_full)
            if world is not None:
                person.world_agreement_mm = world_agreement_mm(person.pred["coco17"], world)
            person.unreliable_because = unreliable_because(person.keypoints, rgb.shape, box,
                                                           fitted, absent)
            results.append(person)
        return results
