"""The mean body (THUNDR's M_0, the MarkerPoser's start) stands upright facing the camera."""
import numpy as np

from models.mean_body import _rest, mean_body
from pose_era import constants
from pose_era.body import BodyModel, default_body_model_path


def test_anny_mean_body_faces_the_camera():
    body = BodyModel.load(default_body_model_path())
    rest = _rest(body, mean_body(body)["root"])
    h36m, coco = rest["h36m17"], rest["coco17"]
    h = constants.H36M17_NAMES.index
    c = constants.COCO17_NAMES.index
    # Camera frame: x right, y down, z forward (away from the camera).
    assert h36m[h("head"), 1] < h36m[h("pelvis"), 1] - 0.3           # head above the pelvis
    assert h36m[h("left_hip"), 0] > h36m[h("right_hip"), 0] + 0.1    # the person's left at +x
    ears_z = 0.5 * (coco[c("left_ear"), 2] + coco[c("right_ear"), 2])
    assert coco[c("nose"), 2] < ears_z - 0.05                        # the face towards the camera
    np.testing.assert_allclose(np.linalg.det(mean_body(body)["root"]), 1.0, atol=1e-5)
