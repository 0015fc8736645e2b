"""BlazePose's full landmark model (pose_landmark_full.tflite) on a detector's rotated ROI.

Facts from MediaPipe's pose_landmark_by_roi_cpu.pbtxt and its calculators (0.10.x): the ROI is
warped to 256x256 RGB in [0, 1] (square, so no letterbox); outputs are 39 landmarks x (x, y, z,
visibility, presence) in input pixels (TensorsToLandmarksCalculator: divided by 256,
visibility and presence through a sigmoid; z on the scale of x), a pose-presence score
(already a probability in this file; a person is there when >= 0.5), a segmentation mask and
heatmaps (unused: we skip MediaPipe's heatmap refinement of the landmarks), and 39 world
landmarks (metres, origin between the hips, the axes of the ROI: rotated back by the ROI's
in-plane rotation as WorldLandmarkProjectionCalculator does). The first 33 are the pose
landmarks; 33-38 are auxiliary points for tracking. LandmarkProjectionCalculator's rotation
maps ROI offsets to the image. MIN_PRESENCE is also the cut for one landmark's presence
(MediaPipe's drawing utilities use 0.5 for both).

The world landmarks' axes are those of a camera looking straight at the ROI's centre, not the
photo's camera: on bodies rendered across a wide photo (docs/eval_demo.md) the rotation that
best aligns them to the true joints turns with the ray through the person (ray yaw -36, -20,
+20, +36 degrees -> best-fit yaw -35, -17, +19, +40 for one body, alike for three others), so
`view_rotation` turns them into the camera frame.
"""
import numpy as np

from pose_era import geometry

INPUT_SIZE = 256
NUM_POSE = 33
MIN_PRESENCE = 0.5

NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def roi_affine(roi):
    """2x3 map from ROI input pixel indices to image pixel indices (centres at integers)."""
    r = _rotation(roi.rotation)
    a = roi.side / INPUT_SIZE
    b = (0.5 / INPUT_SIZE - 0.5) * roi.side
    t = roi.center + r @ np.array([b, b]) - 0.5
    return np.concatenate([a * r, t[:, None]], axis=1)


def preprocess(rgb, roi):
    """RGB uint8 image, Roi -> (1, 256, 256, 3) float32 in [0, 1]; black outside the image."""
    import cv2
    crop = cv2.warpAffine(rgb, roi_affine(roi), (INPUT_SIZE, INPUT_SIZE),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return (crop.astype(np.float32) / 255.0)[None]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def decode(raw_landmarks, raw_world, roi):
    """Model outputs (195,), (117,) -> (landmarks (33, 5): image x, y (pixels), z (pixels,
    relative), visibility, presence; world (33, 3) metres, image-aligned x right, y down)."""
    lm = raw_landmarks.reshape(-1, 5)[:NUM_POSE].astype(np.float64)
    r = _rotation(roi.rotation)
    local = (lm[:, :2] / INPUT_SIZE - 0.5) * roi.side
    xy = local @ r.T + roi.center
    z = lm[:, 2] / INPUT_SIZE * roi.side
    out = np.concatenate([xy, z[:, None], _sigmoid(lm[:, 3:5])], axis=1)
    world = raw_world.reshape(-1, 3)[:NUM_POSE].astype(np.float64)
    world = np.concatenate([world[:, :2] @ r.T, world[:, 2:]], axis=1)
    return out.astype(np.float32), world.astype(np.float32)


def view_rotation(K, pixel):
    """(3, 3) rotation from the frame of a camera looking at `pixel` (x, y) to the camera of
    intrinsics K: the smallest turn taking the optical axis onto that pixel's ray."""
    ray = np.linalg.solve(np.asarray(K, np.float64), [pixel[0], pixel[1], 1.0])
    ray /= np.linalg.norm(ray)
    axis = np.cross([0.0, 0.0, 1.0], ray)
    sin = np.linalg.norm(axis)
    angle = np.arctan2(sin, ray[2])
    rotvec = axis / sin * angle if sin > 1e-12 else np.zeros(3)
    return geometry.axis_angle_to_matrix(rotvec[None]).numpy()[0]
