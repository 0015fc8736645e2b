"""tools/demo.py end to end with a tiny untrained checkpoint, on rendered people and bad inputs.

The untrained network puts the mean body in the middle of the crop (filling 80% of it, THUNDR's
M_0), so with --no-fit its mesh, projected with the full image's camera from the JSON, must land
inside the person's box: a check of the crop, the crop intrinsics and the full-image camera.
"""
import json

import cv2
import numpy as np
import pytest
import tensorflow as tf
import trimesh
from PIL import Image

from data_pipelines import images
from eval import demo as pipeline
from eval import demo_outputs
from pose_era import constants
from pose_era import renderer
from pose_era import geometry
from tests import anny_scenes
from tests.anny_scenes import scenes
from tests.tiny_pose_workdir import STEP, make_workdir
from tools import demo


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("demo"))[0]


def _run(argv, capsys):
    code = demo.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _obj_vertices(path):
    """Every vertex of an .obj (trimesh's loader drops unreferenced ones)."""
    return np.array([line.split()[1:4] for line in path.read_text().splitlines()
                     if line.startswith("v ")], np.float64)


def test_rendered_person_is_found_fitted_and_written(workdir, tmp_path, capsys):
    ex = scenes()[0]
    image, empty = tmp_path / "person.jpg", tmp_path / "empty.png"
    image.write_bytes(ex["jpeg"])
    cv2.imwrite(str(empty), np.full((120, 160, 3), 128, np.uint8))
    out = tmp_path / "out"
    code, stdout, err = _run([str(image), str(empty), "--ckpt", str(workdir), "--out", str(out),
                              "--compare"], capsys)
    assert code == 0, err
    assert f"no person found in {empty}" in err
    names = {"person_overlay.png", "person_side.png", "person.obj", "person.ply", "person.json"}
    assert {p.name for p in out.iterdir()} == names
    assert all(str(out / n) in stdout for n in names)
    assert cv2.imread(str(out / "person_overlay.png")).shape == (480, 480, 3)
    params = json.loads((out / "person.json").read_text())
    assert params["stages"] == ["detector", "landmarks", "network", "fit"]
    assert params["bbox"]["source"] == "blazepose" and params["checkpoint"]["step"] == STEP
    assert 0.5 <= params["detector"]["score"] <= 1
    kp, gt = np.array(params["keypoints"]["coco17"]), ex["kp2d"]
    vis = gt[:, 2] == 2
    flipped = kp[list(constants.COCO17_FLIP_PERM)]         # seen from behind: maybe mirrored
    err_px = min(np.median(np.linalg.norm(k[vis, :2] - gt[vis, :2], axis=1)) for k in (kp, flipped))
    assert err_px < 40
    fit = params["fit"]
    assert fit["reprojection_error_px"] < fit["start_reprojection_error_px"]
    assert params["reliable"] is True and params["unreliable_because"] == []
    assert "unreliable" not in err
    assert np.isfinite(_obj_vertices(out / "person.obj")).all()
    joints = params["joints"]
    assert joints["names"] == list(constants.COCO17_NAMES)
    xyz, K = np.array(joints["coco17_3d"]), np.array(params["camera"]["K"])
    uv = xyz @ K.T
    np.testing.assert_allclose(np.array(joints["coco17_2d"]), uv[:, :2] / uv[:, 2:], atol=0.05)
    agreement = params["world_agreement_mm"]
    assert 0 < agreement < 1000
    assert f"person: 3D agreement with BlazePose's world landmarks {agreement:.0f} mm" in stdout


def test_a_person_cut_off_below_the_face_is_unreliable(workdir, tmp_path, capsys):
    """Only the head in the photo: BlazePose still finds the person, but the keypoints seen
    inside the photo are the face's, no shoulder or hip: the JSON and the console say so."""
    image = tmp_path / "head.png"
    cv2.imwrite(str(image), scenes()[0]["rgb"][:120, :, ::-1])
    out = tmp_path / "out"
    code, _, err = _run([str(image), "--ckpt", str(workdir), "--out", str(out)], capsys)
    assert code == 0, err
    params = json.loads((out / "head.json").read_text())
    assert params["stages"][-1] == "fit" and params["reliable"] is False
    because = params["unreliable_because"]
    assert any("of the 17 keypoints are seen" in r for r in because), because
    assert any("none of the shoulders and hips are seen" in r for r in because), because
    lines = [l for l in err.splitlines() if "unreliable" in l]
    assert len(lines) == 1 and lines[0].startswith("warning: head: the result is unreliable: ")


def test_a_body_cut_at_the_hips_keeps_its_legs_outside_the_photo(tmp_path, capsys):
    """A rendered person seen from behind, the photo cut just below the hips, through the CLI
    with the released model: the fitted knees and ankles project below the photo (BlazePose
    draws its guesses for them squeezed just past the border), the upper body still matches,
    with the demo's default model (the keypoint-fed release),
    and the body stands: torso upright, legs straight below the hips (not lying, not
    crouched)."""
    ex = scenes()[0]
    kp, names = ex["kp2d"], list(constants.COCO17_NAMES)
    hips = [names.index(f"{s}_hip") for s in ("left", "right")]
    cut = int(kp[hips, 1].max() + 0.06 * np.ptp(kp[:, 1]))
    image = tmp_path / "cut.png"
    cv2.imwrite(str(image), ex["rgb"][:cut, :, ::-1])
    code, _, err = _run([str(image), "--out", str(tmp_path)], capsys)   # the default model
    assert code == 0, err
    params = json.loads((tmp_path / "cut.json").read_text())
    uv, xyz = np.array(params["joints"]["coco17_2d"]), np.array(params["joints"]["coco17_3d"])
    legs = [names.index(f"{s}_{p}") for s in ("left", "right") for p in ("knee", "ankle")]
    assert (uv[legs, 1] > cut).all(), uv[legs]                  # measured 291-364, cut 287
    upper = [names.index(f"{s}_{p}") for s in ("left", "right")
             for p in ("shoulder", "elbow", "wrist", "hip")]
    assert np.median(np.linalg.norm(uv[upper] - kp[upper, :2], axis=1)) < 25   # measured 15
    torso = xyz[[names.index("left_shoulder"), names.index("right_shoulder")]].mean(0) \
        - xyz[hips].mean(0)
    assert np.degrees(np.arccos(-torso[1] / np.linalg.norm(torso))) < 30   # up is -y; 3.5
    for side in ("left", "right"):
        hip, knee, ankle = (xyz[names.index(f"{side}_{p}")] for p in ("hip", "knee", "ankle"))
        bend = np.degrees(np.arccos((hip - knee) @ (ankle - knee) / np.linalg.norm(hip - knee)
                                    / np.linalg.norm(ankle - knee)))
        assert bend > 150 and ankle[1] - hip[1] > 0.5, (side, bend, ankle - hip)  # 170, 0.7 m


def test_unreliable_reasons_on_synthetic_keypoints():
    """Each rule alone: no keypoints, too few seen (low visibility or outside the photo), too
    few torso points, and a fit that ends far from the keypoints (5% of the box's side);
    keypoints rated absent are not seen, nor held against the fit."""
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(100, 300, (17, 2)), np.ones((17, 1))], 1)
    box, shape = (100.0, 100.0, 200.0, 200.0), (480, 640, 3)
    assert pipeline.unreliable_because(kp, shape, box, kp[:, :2] + 3.0) == []
    assert pipeline.unreliable_because(kp, shape, box) == []            # --no-fit: no residual
    far = pipeline.unreliable_because(kp, shape, box, kp[:, :2] + [12.0, 0.0])   # 6% of 200
    assert len(far) == 1 and "12 px" in far[0] and "6%" in far[0]
    few = kp.copy()
    few[:12, 2] = 0.4                                  # seen: one hip, knees, ankles
    few[14, 0] = 700.0                                 # a knee outside the 640 px photo
    reasons = pipeline.unreliable_because(few, shape, box)
    assert len(reasons) == 2 and "only 4 of the 17" in reasons[0] and "only 1 of" in reasons[1]
    torso = kp.copy()
    torso[[5, 6, 11], 2] = 0.0
    reasons = pipeline.unreliable_because(torso, shape, box)
    assert len(reasons) == 1 and "only 1 of the shoulders and hips" in reasons[0]
    assert "no 2D keypoints" in pipeline.unreliable_because(None, shape, box)[0]
    absent = np.zeros(17, bool)
    absent[list(pipeline.TORSO)] = True               # drawn in the photo, rated absent
    far = kp[:, :2].copy()
    far[list(pipeline.TORSO)] += 100.0                # and the fit did not follow them
    reasons = pipeline.unreliable_because(kp, shape, box, far, absent)
    assert len(reasons) == 1 and "none of the shoulders and hips" in reasons[0], reasons


def test_unseen_keypoints_at_the_border_may_be_cut_off():
    """maybe_cut_off: drawn inside the photo, not seen (low visibility or rated absent), and
    within BORDER_MARGIN x the box's longer side of any border; seen keypoints, keypoints in
    the middle and keypoints outside the photo (the frame handles those) are not."""
    shape, box = (375, 420, 3), (50.0, 55.0, 175.0, 450.0)          # margin 0.1 x 450 = 45 px
    kp = np.tile([[200.0, 200.0, 0.9]], (17, 1))
    kp[13] = [170.0, 351.0, 0.46]      # bus_cut.png's knees: 24 px above the bottom, unsure
    kp[14] = [128.0, 365.0, 0.9]       # as near, but seen
    kp[9] = [150.0, 219.0, 0.47]       # unsure, but 156 px from the nearest border
    kp[15] = [163.0, 428.0, 0.15]      # below the photo
    kp[3] = [10.0, 200.0, 0.9]         # rated absent, 10 px from the left border
    absent = np.zeros(17, bool)
    absent[3] = True
    got = pipeline.maybe_cut_off(kp, shape, box, absent)
    assert np.flatnonzero(got).tolist() == [3, 13]
    assert np.flatnonzero(pipeline.maybe_cut_off(kp, shape, box)).tolist() == [13]
    narrow = (50.0, 55.0, 100.0, 200.0)                               # margin 20 px
    assert not pipeline.maybe_cut_off(kp, shape, narrow)[13]


def test_no_fit_mesh_lands_on_the_box(workdir, tmp_path, capsys):
    ex = scenes()[1]
    image = tmp_path / "p.jpg"
    image.write_bytes(ex["jpeg"])
    x, y, w, h = 100.0, 60.0, 200.0, 360.0
    out = tmp_path / "out"
    code, _, err = _run([str(image), "--ckpt", str(workdir), "--out", str(out), "--no-fit",
                         "--bbox", f"{x},{y},{w},{h}"], capsys)
    assert code == 0, err
    params = json.loads((out / "p.json").read_text())
    assert params["bbox"]["source"] == "bbox" and params["fit"] is None
    assert "fit" not in params["stages"] and params["bbox"]["xywh"] == [x, y, w, h]
    K = np.array(params["camera"]["K"])
    np.testing.assert_allclose(K[0, 0], np.hypot(480, 480), rtol=1e-6)
    verts = _obj_vertices(out / "p.obj")
    np.testing.assert_allclose(trimesh.load(out / "p.ply", process=False).vertices, verts,
                               atol=1e-5)
    uv = verts @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    np.testing.assert_allclose((uv.min(0) + uv.max(0)) / 2, [x + w / 2, y + h / 2], atol=2.0)
    assert np.ptp(uv[:, 1]) == pytest.approx(0.96 * max(w, h), rel=0.05)


def test_small_photo_pictures_are_drawn_at_480(tmp_path):
    """A 160 px photo (make demo's test crops) gives 480 px pictures whose mesh is rendered at
    480 px with the scaled camera (its silhouette is that render's, pixel for pixel, not a
    160 px render enlarged), over the enlarged photo."""
    ex, body = scenes()[0], anny_scenes.anny_body()
    small = cv2.resize(ex["rgb"], (160, 160), interpolation=cv2.INTER_AREA)
    K = np.diag([1 / 3, 1 / 3, 1]).astype(np.float32) @ ex["K"]   # the scene's camera at 160
    verts = body(ex["betas"][None], geometry.axis_angle_to_matrix(ex["pose"][None]),
                 ex["transl"][None])["vertices"].numpy()[0]
    person = pipeline.Person((0.0, 0.0, 160.0, 160.0), "bbox", np.array([0, 0, 160, 160]), K, K,
                             {"vertices": verts})
    paths = demo_outputs.write_pictures(tmp_path, "p", small / 255.0, person, body.faces)
    over = cv2.imread(str(paths[0]))[..., ::-1] / 255.0
    assert over.shape == (480, 480, 3) and max(cv2.imread(str(paths[1])).shape) == 480
    mask = renderer.rasterize(verts, body.faces, ex["K"], 480, 480, cull_backfaces=False).mask
    assert mask.sum() > 5000
    plain = cv2.resize(small / 255.0, (480, 480), interpolation=cv2.INTER_CUBIC)
    changed = np.abs(over - plain).max(-1) > 0.02
    inner = np.zeros_like(mask)
    inner[4:-4, 4:-4] = True                               # the box is drawn on the border
    iou = (changed & mask & inner).sum() / ((changed | mask) & inner).sum()
    assert iou > 0.98, iou                 # a 160 px render enlarged gives 0.93
    assert np.abs(over - plain)[~mask & inner].mean() < 0.01


def test_side_view_shows_the_whole_body_of_a_cut_photo(tmp_path):
    """A photo cut just below the hips: the side view shows the whole mesh (it was rendered
    with the photo's camera and size: legs cut off), turned 90 degrees (its depth extent
    across the picture), at the photo's longer side."""
    ex, body = scenes()[0], anny_scenes.anny_body()
    verts = body(ex["betas"][None], geometry.axis_angle_to_matrix(ex["pose"][None]),
                 ex["transl"][None])["vertices"].numpy()[0]
    K = ex["K"]
    cut = int(np.median(pipeline.project(verts, K)[:, 1]))   # half the body below the photo
    person = pipeline.Person((0.0, 0.0, 480.0, float(cut)), "bbox",
                             np.array([0, 0, 480, cut]), K, K, {"vertices": verts})
    paths = demo_outputs.write_pictures(tmp_path, "p", ex["rgb"][:cut] / 255.0, person,
                                        body.faces)
    side = cv2.imread(str(paths[1]))
    assert max(side.shape[:2]) == 480
    drawn = (side < 250).any(-1)                            # white background elsewhere
    rows, cols = np.flatnonzero(drawn.any(1)), np.flatnonzero(drawn.any(0))
    assert rows[0] > 0 and rows[-1] < side.shape[0] - 1     # nothing cut off
    assert cols[0] > 0 and cols[-1] < side.shape[1] - 1
    place, K_side, (h, w) = demo_outputs.side_view(verts, 480)
    uv = pipeline.project(place(verts), K_side)
    assert (uv >= 0).all() and (uv <= [w, h]).all()
    height = np.ptp(verts[:, 1])                            # the body stands in both views
    assert np.ptp(uv[:, 1]) == pytest.approx(0.9 * 480 * min(1.0, height / max(
        np.ptp(place(verts)[:, 0]), height)), rel=0.05)
    np.testing.assert_allclose(np.ptp(place(verts)[:, 0]), np.ptp(verts[:, 2]), rtol=1e-4)


def test_failed_rendering_still_writes_mesh_and_json(workdir, tmp_path, capsys, monkeypatch):
    image = tmp_path / "grey.jpg"
    cv2.imwrite(str(image), np.full((160, 200, 3), 128, np.uint8))

    def broken(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(renderer, "render_mesh", broken)
    out = tmp_path / "out"
    code, _, err = _run([str(image), "--ckpt", str(workdir), "--out", str(out),
                         "--bbox", "10,10,100,140"], capsys)
    assert code == 0 and "rendering failed" in err
    assert {p.name for p in out.iterdir()} == {"grey.obj", "grey.ply", "grey.json"}


def test_tiny_images_do_not_crash(workdir, tmp_path, capsys):
    image = tmp_path / "dot.png"
    cv2.imwrite(str(image), np.full((1, 1, 3), 200, np.uint8))
    out = tmp_path / "out"
    code, _, err = _run([str(image), "--ckpt", str(workdir), "--out", str(out)], capsys)
    assert code == 2 and "no person found" in err and "Traceback" not in err
    code, _, err = _run([str(image), "--ckpt", str(workdir), "--out", str(out),
                         "--bbox", "0,0,1,1"], capsys)
    assert code == 0, err
    assert np.isfinite(_obj_vertices(out / "dot.obj")).all()


def test_bad_inputs_are_one_line_and_exit_2(workdir, tmp_path, capsys, monkeypatch):
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not an image")
    good = tmp_path / "ok.png"
    cv2.imwrite(str(good), np.zeros((160, 200, 3), np.uint8))
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(scenes()[0]["jpeg"][:4000])
    cases = [
        ([str(tmp_path / "missing.jpg"), "--ckpt", str(workdir)], "no such image file"),
        ([str(not_image), "--ckpt", str(workdir)], "not a readable image"),
        ([str(truncated), "--ckpt", str(workdir)], "truncated"),
        ([str(good), "--ckpt", str(workdir), "--bbox", "500,10,20,20"], "entirely outside"),
        ([str(good), "--ckpt", str(tmp_path)], "neither a training workdir"),
    ]
    for argv, message in cases:
        code, _, err = _run(argv, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.chdir(tmp_path)  # no pretrained/ here
    code, _, err = _run([str(good)], capsys)
    assert code == 2 and "--ckpt" in err and "make demo" in err
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args([str(good), "--bbox", "1,2,3"])
    assert exit_info.value.code == 2


def test_any_image_layout_reads_as_upright_rgb(tmp_path):
    """Grayscale, RGBA, 16-bit and EXIF-rotated files all read as upright (H, W, 3) uint8."""
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:10, :, 0] = 255                                        # red band on top
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full((40, 60), 255, np.uint8)])).save(tmp_path / "a.png")
    cv2.imwrite(str(tmp_path / "deep.png"), rgb[..., ::-1].astype(np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 6                                            # stored turned: rotate 90 cw
    Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(tmp_path / "turned.jpg",
                                                                 exif=exif, quality=95)
    for name in ("gray.png", "a.png", "deep.png", "turned.jpg"):
        out = pipeline.read_image(tmp_path / name)
        assert out.shape == (40, 60, 3) and out.dtype == np.uint8, name
        assert pipeline.image_size(tmp_path / name) == (60, 40), name
        assert out[:8].max() > 200 and out[12:].max() < 60, name


def test_crop_box_is_square_and_enlarged():
    np.testing.assert_allclose(pipeline.crop_box((10, 20, 40, 100)), [-30, 10, 90, 130])


def test_large_photo_crop_keeps_the_crop_intrinsics():
    """Shrinking a big photo before the warp changes the pixels' sampling, not the camera."""
    h, w, size = 1500, 2000, 64
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([u / w, v / h, 0.5 + 0 * u], axis=-1)  # smooth: both paths agree
    K_full = pipeline.full_intrinsics(w, h)
    box = pipeline.crop_box((700.0, 300.0, 500.0, 900.0))
    crop, K_crop = pipeline.prepare_crop(image, K_full, box, size)
    np.testing.assert_allclose(
        K_crop, geometry.crop_intrinsics(tf.constant(K_full), box, size).numpy(), rtol=1e-5)
    direct, _, _ = images.crop(tf.constant(image), K_full, box, size)
    np.testing.assert_allclose(crop.numpy(), direct.numpy(), atol=0.01)
