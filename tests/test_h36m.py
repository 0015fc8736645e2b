"""SPIN-layout Human3.6M reader: crop and intrinsics against independent NumPy geometry, joint
maps by name, the intrinsics choices, and every bad-input path."""
import os

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import h36m, schema
from pose_era import constants
from tests import data_files as files

SIZE = 96


def _examples(src):
    return list(src.examples(src.records(), len(src)).as_numpy_iterator())


def _crop_map(center, scale, size=SIZE):
    """Full-image pixel -> crop pixel, written out by hand (box side 200*scale, corner origin)."""
    side = 200.0 * scale
    x0, y0 = center[0] - side / 2, center[1] - side / 2
    return lambda uv: (uv - np.array([x0, y0])) * (size / side)


def test_crop_and_intrinsics_match_full_image_projection(tmp_path):
    joint = constants.J24_NAMES.index("Left Wrist")
    arrays = files.spin_npz(tmp_path, n=3, blob_joint=joint)
    src = h36m.source(str(tmp_path / "data.npz"), image_size=SIZE)
    examples = _examples(src)
    assert len(examples) == 3
    for i, ex in enumerate(examples):
        to_crop = _crop_map(arrays["center"][i], arrays["scale"][i])
        joints = arrays["S"][i, :, :3]
        expected = to_crop(files.project(joints, files.K_FULL))
        # The crop camera projects the 3D joints where the full camera's pixels land.
        np.testing.assert_allclose(files.project(joints, ex["K"]), expected, atol=1e-3)
        # The image content moved the same way: the blob drawn at the wrist is there.
        u, v = expected[joint]
        np.testing.assert_allclose(files.blob_centroid(ex["image"], u, v), [u, v], atol=0.15)
        # 2D labels: COCO slots filled from `part` and mapped into the crop.
        coco = constants.COCO17_NAMES.index("left_wrist")
        np.testing.assert_allclose(ex["kp2d"][coco], [u, v, 1.0], atol=1e-3)
        assert ex["image"].shape == (SIZE, SIZE, 3) and ex["image"].dtype == np.float32


def test_joint_maps_by_name(tmp_path):
    arrays = files.spin_npz(tmp_path, n=1)
    ex = _examples(h36m.source(str(tmp_path / "data.npz"), image_size=SIZE))[0]
    spin_name = {"pelvis": "Pelvis (MPII)", "thorax": "Neck (LSP)", "spine": "Spine (H36M)",
                 "jaw": "Jaw (H36M)", "head": "Head (H36M)"}
    for slot, name in enumerate(constants.H36M17_NAMES):
        words = name.split("_")
        j24 = spin_name.get(name) or " ".join(w.capitalize() for w in words)
        np.testing.assert_allclose(ex["j3d"][slot],
                                   arrays["S"][0, constants.J24_NAMES.index(j24), :3], atol=1e-6)
    assert ex["has_j3d"] == 1.0
    # SPIN's evaluation selectors agree: H36M-17 slots -> J17 equals J24 -> J17.
    np.testing.assert_allclose(ex["j3d"][list(constants.H36M_TO_J17)],
                               arrays["S"][0, list(constants.J24_TO_J17), :3], atol=1e-6)
    # No body-model labels in this file: zero-filled with flags 0.
    assert ex["has_params"] == 0 and ex["has_markers"] == 0
    assert ex["markers"].shape == (schema.LabelSizes().num_markers, 3)
    assert ex["imgname"] == b"images/S9_Walking_1.xyz_000000.png"


def test_partial_validity_and_missing_face_joints(tmp_path):
    arrays = files.spin_npz(tmp_path, n=2)
    arrays["S"][1, constants.J24_NAMES.index("Left Knee"), 3] = 0
    face = [constants.J24_NAMES.index(n) for n in ("Nose", "Left Eye", "Right Ear")]
    arrays["part"][:, face, 2] = 0
    np.savez(tmp_path / "data.npz", **arrays)
    ex = _examples(h36m.source(str(tmp_path / "data.npz"), image_size=SIZE))
    assert [e["has_j3d"] for e in ex] == [1.0, 0.0]
    np.testing.assert_array_equal(ex[1]["j3d"], 0)
    for name in ("nose", "left_eye", "right_ear"):
        np.testing.assert_array_equal(ex[0]["kp2d"][constants.COCO17_NAMES.index(name)], 0)


def test_default_and_calibrated_intrinsics(tmp_path):
    names = ["images/S9_Directions_1.60457274_000001.png", "images/S9_Eating.12345678_000006.png"]
    arrays = files.spin_npz(tmp_path, n=2, with_K=False, image_names=names)
    examples = _examples(h36m.source(str(tmp_path / "data.npz"), image_size=SIZE))
    fx, fy, cx, cy = h36m.H36M_CAMERAS["60457274"]
    f = np.hypot(files.WIDTH, files.HEIGHT)
    fulls = [np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]),
             np.array([[f, 0, files.WIDTH / 2], [0, f, files.HEIGHT / 2], [0, 0, 1]])]
    point = np.array([[0.3, -0.2, 3.0]])
    for i, (ex, K_full) in enumerate(zip(examples, fulls)):
        expected = _crop_map(arrays["center"][i], arrays["scale"][i])(files.project(point, K_full))
        np.testing.assert_allclose(files.project(point, ex["K"]), expected, atol=1e-3)
    default = _examples(h36m.source(str(tmp_path / "data.npz"), image_size=SIZE,
                                    intrinsics="default"))[0]
    expected = _crop_map(arrays["center"][0], arrays["scale"][0])(files.project(point, fulls[1]))
    np.testing.assert_allclose(files.project(point, default["K"]), expected, atol=1e-3)


def test_extra_keys_give_body_parameters(tmp_path):
    sizes = schema.LabelSizes(num_markers=8, num_betas=4, num_joints=5)
    rng = np.random.default_rng(0)
    extra = {"betas": rng.normal(size=(2, 4)), "pose": rng.normal(size=(2, 15)),
             "transl": rng.normal(size=(2, 3))}
    files.spin_npz(tmp_path, n=2, extra=extra)
    ex = _examples(h36m.source(str(tmp_path / "data.npz"), image_size=SIZE, sizes=sizes))
    for i in range(2):
        assert ex[i]["has_params"] == 1.0
        np.testing.assert_allclose(ex[i]["pose"], extra["pose"][i].reshape(5, 3), rtol=1e-6)
        np.testing.assert_allclose(ex[i]["betas"], extra["betas"][i], rtol=1e-6)
    # Parameters of another body model (wrong joint count) are dropped, not mis-read.
    other = _examples(h36m.source(str(tmp_path / "data.npz"), image_size=SIZE,
                                  sizes=schema.LabelSizes(8, 4, 24)))
    assert other[0]["has_params"] == 0.0 and other[0]["pose"].shape == (24, 3)


def test_missing_keys_and_files_are_named(tmp_path):
    np.savez(tmp_path / "bad.npz", imgname=np.array(["a.jpg"]), S=np.zeros((1, 24, 4)))
    with pytest.raises(ValueError, match="missing keys center, scale"):
        h36m.load_npz(str(tmp_path / "bad.npz"))
    with pytest.raises(FileNotFoundError, match="h36m_valid_protocol2.npz not found; put SPIN"):
        h36m.split_path(str(tmp_path), "test", 2)
    np.savez(tmp_path / "shape.npz", imgname=np.array(["a.jpg"]), center=np.zeros((1, 3)),
             scale=np.ones(1))
    with pytest.raises(ValueError, match="'center' has shape"):
        h36m.load_npz(str(tmp_path / "shape.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable npz"):
        h36m.load_npz(str(tmp_path / "junk.npz"))


def test_bad_images_skipped_and_counted(tmp_path, capfd, caplog):
    names = [f"images/S9_Sitting.xyz_{i:06d}.jpg" for i in range(5)]
    files.spin_npz(tmp_path, n=5, image_names=names)
    root = tmp_path / "images"
    os.remove(root / "S9_Sitting.xyz_000001.jpg")                       # missing
    data = (root / "S9_Sitting.xyz_000002.jpg").read_bytes()
    (root / "S9_Sitting.xyz_000002.jpg").write_bytes(data[: len(data) // 2])  # truncated
    (root / "S9_Sitting.xyz_000004.jpg").write_bytes(b"<html>404</html>")    # not an image
    with caplog.at_level("WARNING"):
        src = h36m.source(str(tmp_path / "data.npz"), image_size=SIZE)
    assert "skipping 1 of 5 samples whose image is missing" in caplog.text
    got = [e["imgname"].decode() for e in _examples(src)]
    assert got == [names[0], names[3]]
    err = capfd.readouterr().err
    assert "skipping unreadable image " + str(root / names[2][7:]) + " (1 skipped so far" in err
    assert "000004.jpg (2 skipped so far, of 4 per pass)" in err


def test_nothing_left_is_a_clear_error(tmp_path):
    names = [f"images/x_{i}.jpg" for i in range(2)]
    files.spin_npz(tmp_path, n=2, image_names=names)
    for name in names:
        (tmp_path / name).write_bytes(b"")
    src = h36m.source(str(tmp_path / "data.npz"), image_size=SIZE)
    with pytest.raises(tf.errors.InvalidArgumentError, match="every image of the pass"):
        _examples(src)
    for name in names:
        os.remove(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="none of the 2 images exist under"):
        h36m.source(str(tmp_path / "data.npz"), image_size=SIZE)
