"""Anatomy of a body model's skeleton: which joint is which, its side, the body's axes, the axes
its joint angles are measured about, and a relaxed standing pose.

Each joint is classified by its name in the body model (`joint_names`: Anny's cmu_mb-style
names, SMPL's, or generic ones like "l_knee") into an anatomical class. Every joint gets three
angle axes built from the rest skeleton, the same for every body model:
  t = the bone's direction (to its child; the incoming bone for feet, toes and leaves),
  f = normalise(forward x t)  -> "ext": positive moves the bone backwards (extension of hip and
      spine, knee flexion, plantar flexion), negative forwards (hip/elbow/shoulder flexion);
  a = t x f                   -> "abd": positive moves the bone away from the midline;
  t                           -> "rot": positive is internal rotation;
The glenohumeral joint's angles are measured from the arm hanging at the side, whatever the
rest pose (Anny rests in an A-pose, SMPL in a T-pose): `neutral` holds that hanging arm.

Used by the synthetic pose sampler (its joint limits) and by the demo's fit (the natural pose of
limbs a photo does not show).
"""
import re

import numpy as np
from scipy.spatial.transform import Rotation

# Explicit names (lower case): Anny's cmu_mb-style skeleton and SMPL's.
NAMED_CLASSES = {
    "lhipjoint": "fixed", "rhipjoint": "fixed", "leftupleg": "hip", "rightupleg": "hip",
    "leftleg": "knee", "rightleg": "knee", "leftfoot": "ankle", "rightfoot": "ankle",
    "lefttoebase": "toe", "righttoebase": "toe", "lowerback": "spine", "spine": "spine",
    "spine1": "spine", "spine2": "spine", "spine3": "spine", "neck": "neck", "neck1": "neck",
    "head": "neck", "leftshoulder": "clavicle", "rightshoulder": "clavicle",
    "leftarm": "shoulder", "rightarm": "shoulder", "leftforearm": "elbow",
    "rightforearm": "elbow", "lefthand": "wrist", "righthand": "wrist",
    "leftfingerbase": "fixed", "rightfingerbase": "fixed", "lefthandfinger1": "finger",
    "righthandfinger1": "finger", "lthumb": "finger", "rthumb": "finger",
    # SMPL
    "left_hip": "hip", "right_hip": "hip", "left_knee": "knee", "right_knee": "knee",
    "left_ankle": "ankle", "right_ankle": "ankle", "left_foot": "toe", "right_foot": "toe",
    "left_collar": "clavicle", "right_collar": "clavicle", "left_shoulder": "shoulder",
    "right_shoulder": "shoulder", "left_elbow": "elbow", "right_elbow": "elbow",
    "left_wrist": "wrist", "right_wrist": "wrist", "left_hand": "finger",
    "right_hand": "finger",
}
# Fallback for other skeletons: first matching pattern of the name without its side marker.
PATTERN_CLASSES = (("toe", "toe"), ("knee", "knee"), ("ankle", "ankle"), ("hip", "hip"),
                   ("clav|collar", "clavicle"), ("shoulder", "shoulder"), ("elbow", "elbow"),
                   ("wrist", "wrist"), ("finger|thumb|hand", "finger"),
                   ("spine|back|chest|thorax", "spine"), ("neck|head", "neck"))
# side markers: "left_hip", "LeftArm", "l_knee", "LThumb" (camel case), "upperarm.L", "hip_l"
_LEFT = re.compile(r"^([Ll]eft|LEFT|[Ll]_|L(?=[A-Z]))|([_.][Ll]|_left)$")
_RIGHT = re.compile(r"^([Rr]ight|RIGHT|[Rr]_|R(?=[A-Z]))|([_.][Rr]|_right)$")


def joint_side(name):
    """+1 for the body's left, -1 for its right, 0 for the midline."""
    if _LEFT.search(name):
        return 1
    if _RIGHT.search(name):
        return -1
    return 0


def joint_class(name, is_root):
    """Anatomical class of a joint name (hip, knee, ankle, toe, spine, neck, clavicle,
    shoulder, elbow, wrist, finger, fixed), "root", or None when unknown."""
    if is_root:
        return "root"
    key = name.lower()
    if key in NAMED_CLASSES:
        return NAMED_CLASSES[key]
    bare = re.sub(r"^(left|right|l_|r_)|(_l|_r|\.l|\.r|_left|_right)$", "", key)
    for pattern, cls in PATTERN_CLASSES:
        if re.search(pattern, bare):
            return cls
    return None


def unit(v):
    return v / np.linalg.norm(v)


def rotation_between(a, b):
    """Smallest rotation matrix taking unit vector a to unit vector b."""
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-9:
        return np.eye(3)
    return Rotation.from_rotvec(axis / s * np.arctan2(s, c)).as_matrix()


class Anatomy:
    """A body model's joints classified: classes, sides, the body's axes (left, up, forward),
    per joint the (f, a, t) axes of its angles, and `neutral`, the local rotations of a relaxed
    standing pose (identity except the glenohumeral joints: the arms hang at the sides).

    joint_names (J,), parents (J,) with -1 at the root, rest_joints (J,3) of the mean body.
    """

    def __init__(self, joint_names, parents, rest_joints):
        self.names = [str(n) for n in joint_names]
        self.parents = np.asarray(parents, np.int64)
        rest = np.asarray(rest_joints, np.float64)
        J = len(self.names)
        self.classes = [joint_class(n, p < 0) for n, p in zip(self.names, self.parents)]
        self.sides = np.array([joint_side(n) for n in self.names])
        self.unknown = [n for n, c in zip(self.names, self.classes) if c is None]
        self.left, self.up, self.forward = self._body_axes(rest)
        self.axes = np.zeros((J, 3, 3))          # columns f, a, t per joint
        self.neutral = np.tile(np.eye(3), (J, 1, 1))
        children = [np.flatnonzero(self.parents == j) for j in range(J)]
        for j in range(J):
            if self.parents[j] < 0:
                continue
            t = self._bone_direction(j, children[j], rest)
            if self.classes[j] == "shoulder":      # measure from the arm hanging at the side
                hang = unit(-self.up + 0.05 * self.sides[j] * self.left)
                self.neutral[j] = rotation_between(t, hang)
                t = hang
            f = np.cross(self.forward, t)
            f = unit(f) if np.linalg.norm(f) > 1e-6 else self.left
            self.axes[j] = np.stack([f, np.cross(t, f), t], axis=1)

    def _body_axes(self, rest):
        def find(cls, side):
            idx = [j for j, (c, s) in enumerate(zip(self.classes, self.sides))
                   if c == cls and s == side]
            return idx[0] if idx else None
        hip_l, hip_r = find("hip", 1), find("hip", -1)
        neck = find("neck", 0)
        root = int(np.flatnonzero(self.parents < 0)[0])
        if hip_l is None or hip_r is None or neck is None:
            raise ValueError(f"body anatomy: cannot find left/right hips and a neck among the "
                             f"body model's joint names {self.names}; name them like SMPL "
                             f"(left_hip, right_hip, neck) or Anny (LeftUpLeg, RightUpLeg, Neck)")
        up = unit(rest[neck] - rest[root])
        left = rest[hip_l] - rest[hip_r]
        left = unit(left - np.dot(left, up) * up)
        return left, up, np.cross(left, up)

    def _bone_direction(self, j, children, rest):
        incoming = rest[j] - rest[self.parents[j]]
        if len(children):
            side = self.sides[j]
            pick = [c for c in children if self.sides[c] == side and
                    self.classes[c] not in ("finger",)] or [
                c for c in children if self.sides[c] == side] or list(children)
            out = rest[pick[0]] - rest[j]
            if np.linalg.norm(out) > 1e-6 and abs(np.dot(unit(out), self.forward)) < 0.7:
                return unit(out)
        if np.linalg.norm(incoming) > 1e-6:
            return unit(incoming)
        return self.up
