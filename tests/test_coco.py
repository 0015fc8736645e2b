"""COCO person-keypoint reader: one 2D-only example per person, crops and K by hand-written
NumPy geometry, the filters, and the bad-input messages."""
import json

import numpy as np
import pytest

from data_pipelines import coco
from pose_era import constants
from tests import data_files as files

SIZE = 64


def _examples(src):
    return list(src.examples(src.records(), len(src)).as_numpy_iterator())


def test_persons_become_2d_only_examples(tmp_path):
    json_path, folder, anns = files.coco_json(tmp_path)
    src = coco.source(json_path, folder, image_size=SIZE)
    examples = _examples(src)
    assert [e["imgname"].decode() for e in examples] == ["000007.jpg", "000007.jpg", "000009.jpg"]
    f = np.hypot(files.WIDTH, files.HEIGHT)
    K_full = np.array([[f, 0, files.WIDTH / 2], [0, f, files.HEIGHT / 2], [0, 0, 1]])
    for ex, ann in zip(examples, anns):
        x, y, w, h = ann["bbox"]
        side = 1.2 * max(w, h)
        x0, y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
        kp = np.reshape(ann["keypoints"], (17, 3)).astype(np.float64)
        vis = kp[:, 2] > 0
        # COCO pixel indices + 0.5 = corner-origin coordinates, then into the crop.
        expected = (kp[:, :2] + 0.5 - [x0, y0]) * SIZE / side
        np.testing.assert_allclose(ex["kp2d"][vis, :2], expected[vis], atol=1e-3)
        np.testing.assert_array_equal(ex["kp2d"][:, 2], vis.astype(np.float32))
        np.testing.assert_array_equal(ex["kp2d"][~vis], 0)
        # Default camera of the full image, mapped into the crop.
        point = np.array([[0.2, 0.1, 2.5]])
        full = files.project(point, K_full)
        np.testing.assert_allclose(files.project(point, ex["K"]),
                                   (full - [x0, y0]) * SIZE / side, atol=1e-3)
        for key in ("has_j3d", "has_markers", "has_params"):
            assert ex[key] == 0.0
        np.testing.assert_array_equal(ex["j3d"], 0)
        assert ex["image"].shape == (SIZE, SIZE, 3)


def test_min_keypoints_filter_and_crowd(tmp_path):
    json_path, folder, _ = files.coco_json(tmp_path)
    # Person 2 has 14 labelled keypoints, the others 17; the crowd region is always dropped.
    assert len(coco.source(json_path, folder, SIZE, min_keypoints=15)) == 2
    with pytest.raises(ValueError, match="no person annotation with >= 18"):
        coco.source(json_path, folder, SIZE, min_keypoints=18)


def test_flip_permutation_is_the_name_mirror():
    names = constants.COCO17_NAMES
    for i, j in enumerate(constants.COCO17_FLIP_PERM):
        mirrored = names[i].replace("left", "tmp").replace("right", "left").replace("tmp", "right")
        assert names[j] == mirrored


def test_bad_input_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match="person_keypoints_train2017.json not found; "
                                                "put the COCO 2017 keypoint annotations"):
        coco.split_paths(str(tmp_path), "train")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid json"):
        coco.load_json(str(tmp_path / "bad.json"))
    (tmp_path / "keys.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="missing keys annotations"):
        coco.load_json(str(tmp_path / "keys.json"))
