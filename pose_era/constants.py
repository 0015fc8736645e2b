"""Joint orders and index maps: the one home of every joint convention in the project.

Follows SPIN's `constants.py` (nkolot/SPIN) so that files in its layout and its evaluation
protocol read the same here. Three orders matter:

- J24: the ground-truth order of SPIN's npz files (`S` (N,24,4), `part` (N,24,3)).
- H36M-17: the order of the schema's `j3d` and of the body model's `h36m17` keypoints. It is
  defined by SPIN's `H36M_TO_J17` (the order of SPIN's `J_regressor_h36m` and of its
  preprocessing's `global_idx`): the LEFT leg comes first (slots 1-3), then the right (4-6).
  This is the mirror of the labels some other repositories (e.g. VideoPose3D) print for the
  same raw Human3.6M channels; following SPIN keeps SPIN's maps valid unchanged.
- COCO-17: the order of the schema's `kp2d` (COCO person keypoints).

A "flip permutation" P lists, for each joint i, the joint that takes its place after a
horizontal mirror: `flipped[i] = original[P[i]]`.
"""
# SPIN's 24 ground-truth joints (JOINT_NAMES[25:] of SPIN's constants.py).
J24_NAMES = (
    "Right Ankle", "Right Knee", "Right Hip", "Left Hip", "Left Knee", "Left Ankle",
    "Right Wrist", "Right Elbow", "Right Shoulder", "Left Shoulder", "Left Elbow", "Left Wrist",
    "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)", "Thorax (MPII)", "Spine (H36M)",
    "Jaw (H36M)", "Head (H36M)", "Nose", "Left Eye", "Right Eye", "Left Ear", "Right Ear",
)
J24_FLIP_PERM = (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13, 14, 15, 16, 17, 18, 19, 21, 20,
                 23, 22)

# SPIN's evaluation selectors: 17 (and the first 14, LSP order with head = H36M head) joints
# from the H36M-17 regressor output and from the J24 ground truth.
H36M_TO_J17 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10, 0, 7, 9)
H36M_TO_J14 = H36M_TO_J17[:14]
J24_TO_J17 = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18, 14, 16, 17)
J24_TO_J14 = J24_TO_J17[:14]

# H36M-17 slot names, read off H36M_TO_J17 (slot H36M_TO_J17[k] holds J17 joint k).
H36M17_NAMES = (
    "pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
    "spine", "thorax", "jaw", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)
H36M17_FLIP_PERM = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)
# Which J24 joint fills each H36M-17 slot (equals SPIN preprocessing's `global_idx`).
J24_TO_H36M17 = tuple(J24_TO_J17[H36M_TO_J17.index(h)] for h in range(17))

# COCO-17 person keypoints, in the order of the COCO annotation files.
COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO17_FLIP_PERM = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
# Which J24 joint fills each COCO-17 slot (all 17 exist in J24; LSP hips stand in for COCO's).
J24_TO_COCO17 = (19, 20, 21, 22, 23, 9, 8, 10, 7, 11, 6, 3, 2, 4, 1, 5, 0)

