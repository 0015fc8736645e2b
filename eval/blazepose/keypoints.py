"""BlazePose's 33 landmarks -> the project's COCO-17 and H36M-17 keypoints (one (17, 33) map each).

COCO-17: all 17 are BlazePose landmarks of the same name (nose, eyes, ears, shoulders,
elbows, wrists, hips, knees, ankles). Caveats: BlazePose's eye is the eyeball centre (COCO's
too). Measured (docs/eval_demo.md): on rendered bodies BlazePose's hips coincide with our body
model's coco17 hips and its shoulders sit 0.055 of the torso higher; the real-photo
annotations put hips 0.07 of the person's size below BlazePose's. Left uncorrected: shifting
the shoulders by the renders' offset changed no result.
H36M-17 (SPIN's order, pose_era.constants): hips, knees, ankles, shoulders, elbows,
wrists are landmarks; the others are SYNTHESISED as fixed combinations, so they are rough:
pelvis = mid-hip; thorax = mid-shoulder; spine = mean of pelvis and thorax; jaw (H36M's
neck/nose slot) = mean of the mouth corners and the thorax... weighted 3:1 towards the mouth;
head (top) = mid-ear + 0.6 (mid-ear - thorax), an extrapolation. A combination's visibility
is the lowest of its landmarks'.
"""
import numpy as np

from eval.blazepose.landmarks import NAMES, NUM_POSE
from pose_era import constants


def _combination(spec):
    row = np.zeros(NUM_POSE, np.float32)
    for name, weight in spec.items():
        row[NAMES.index(name)] += weight
    return row


_HIPS = {"left_hip": 0.5, "right_hip": 0.5}
_SHOULDERS = {"left_shoulder": 0.5, "right_shoulder": 0.5}
_EARS = {"left_ear": 0.5, "right_ear": 0.5}
_H36M_SYNTH = {
    "pelvis": _HIPS,
    "thorax": _SHOULDERS,
    "spine": {k: 0.5 * v for k, v in {**_HIPS, **_SHOULDERS}.items()},
    "jaw": {"mouth_left": 0.375, "mouth_right": 0.375,
            **{k: 0.25 * v for k, v in _SHOULDERS.items()}},
    "head": {**{k: 1.6 * v for k, v in _EARS.items()},
             **{k: -0.6 * v for k, v in _SHOULDERS.items()}},
}

COCO17 = np.stack([_combination({name: 1.0}) for name in constants.COCO17_NAMES])
H36M17 = np.stack([_combination(_H36M_SYNTH.get(name, {name: 1.0}))
                   for name in constants.H36M17_NAMES])


def convert(points, visibility, mapping):
    """points (33, D) and visibility (33,) -> (17, D) mapped points and (17,) visibility (the
    lowest of the landmarks each keypoint is made of)."""
    used = np.where(mapping != 0, visibility[None, :], np.inf)
    return mapping @ points, used.min(axis=1)
