"""tools/demo.py on a rendered image with a tiny untrained checkpoint, and its bad inputs.

The untrained network puts the mean body in the middle of the crop (filling 80% of it, THUNDR's
M_0), so its mesh, projected with the full image's camera from the JSON, must land inside the
person's box: a check of the crop, the crop intrinsics and the full-image camera together.
"""
import json

import cv2
import numpy as np
import pytest
import tensorflow as tf
import trimesh

from data_pipelines import images
from data_pipelines.synthetic import renderer
from pose_era import geometry
from tests.tiny_pose_workdir import STEP, make_workdir
from tools import demo

W, H = 200, 160


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("demo"))[0]


def _rendered_person(path):
    """A person-sized box (1.5 x 1.8 x 0.3 m, like the T-posed tiny body) 6 m from the camera,
    rendered into a W x H photo; returns its projected box (x, y, w, h)."""
    person = trimesh.creation.box(extents=(1.5, 1.8, 0.3))
    verts = np.asarray(person.vertices, np.float32) + np.array([-0.6, 0.2, 6.0], np.float32)
    K = demo.full_intrinsics(W, H)
    render = renderer.render_mesh(verts, np.asarray(person.faces), K, H, W, cull_backfaces=False,
                                  background=(0.3, 0.4, 0.5))
    cv2.imwrite(str(path), (render.image[..., ::-1] * 255).astype(np.uint8))
    ys, xs = np.nonzero(render.mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(
        ys.max() + 1 - ys.min())


def _run(argv, capsys):
    code = demo.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_mesh_lands_on_the_person(workdir, tmp_path, capsys):
    image = tmp_path / "person.png"
    x, y, w, h = _rendered_person(image)
    out = tmp_path / "out"
    code, stdout, err = _run([str(image), "--ckpt", str(workdir), "--out", str(out),
                              "--bbox", f"{x},{y},{w},{h}"], capsys)
    assert code == 0, err
    for name in ("person_overlay.png", "person_side.png", "person.obj", "person.ply",
                 "person.json"):
        assert (out / name).is_file() and str(out / name) in stdout
    assert cv2.imread(str(out / "person_overlay.png")).shape == (H, W, 3)
    params = json.loads((out / "person.json").read_text())
    assert params["bbox"]["source"] == "bbox" and params["checkpoint"]["step"] == STEP
    assert len(params["pose"]) == len(params["joint_names"]) == len(params["pose_axis_angle"])
    K = np.array(params["camera"]["K"])
    np.testing.assert_allclose(K[0, 0], np.hypot(W, H), rtol=1e-6)
    # every vertex, read from the .obj text (trimesh's loader drops unreferenced ones)
    verts = np.array([line.split()[1:4] for line in (out / "person.obj").read_text().splitlines()
                      if line.startswith("v ")], np.float64)
    ply = trimesh.load(out / "person.ply", process=False)
    np.testing.assert_allclose(ply.vertices, verts, atol=1e-5)
    uv = verts @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    tol = 0.03 * max(w, h)
    assert (uv[:, 0] >= x - tol).all() and (uv[:, 0] <= x + w + tol).all()
    assert (uv[:, 1] >= y - tol).all() and (uv[:, 1] <= y + h + tol).all()
    # centred on the box and as tall as 0.8 (fill) x 1.2 (crop enlargement) of its longer side
    np.testing.assert_allclose((uv.min(0) + uv.max(0)) / 2, [x + w / 2, y + h / 2], atol=2.0)
    assert np.ptp(uv[:, 1]) == pytest.approx(0.96 * max(w, h), rel=0.05)


def test_no_person_and_failed_rendering_still_write_mesh_and_json(workdir, tmp_path, capsys,
                                                                 monkeypatch):
    image = tmp_path / "empty.jpg"
    cv2.imwrite(str(image), np.full((H, W, 3), 128, np.uint8))

    def broken(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(renderer, "render_mesh", broken)
    out = tmp_path / "out"
    code, _, err = _run([str(image), "--ckpt", str(workdir), "--out", str(out)], capsys)
    assert code == 0 and "no person found" in err and "rendering failed" in err
    assert {p.name for p in out.iterdir()} == {"empty.obj", "empty.ply", "empty.json"}
    params = json.loads((out / "empty.json").read_text())
    assert params["bbox"]["source"] == "whole_image"
    assert params["bbox"]["xywh"] == [0.0, 0.0, W, H]


def test_bad_inputs_are_one_line_and_exit_2(workdir, tmp_path, capsys, monkeypatch):
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not an image")
    good = tmp_path / "ok.png"
    cv2.imwrite(str(good), np.zeros((H, W, 3), np.uint8))
    cases = [
        ([str(tmp_path / "missing.jpg"), "--ckpt", str(workdir)], "no such image file"),
        ([str(not_image), "--ckpt", str(workdir)], "not an image"),
        ([str(good), "--ckpt", str(tmp_path)], "neither a training workdir"),
    ]
    for argv, message in cases:
        code, _, err = _run(argv, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.chdir(tmp_path)  # no runs/demo here
    code, _, err = _run([str(good)], capsys)
    assert code == 2 and "make demo" in err
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args([str(good), "--bbox", "1,2,3"])
    assert exit_info.value.code == 2


def test_crop_box_is_square_and_enlarged():
    np.testing.assert_allclose(demo.crop_box((10, 20, 40, 100)), [-30, 10, 90, 130])


def test_large_photo_crop_keeps_the_crop_intrinsics():
    """Shrinking a big photo before the warp changes the pixels' sampling, not the camera."""
    h, w, size = 1500, 2000, 64
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([u / w, v / h, 0.5 + 0 * u], axis=-1)  # smooth: both paths agree
    K_full = demo.full_intrinsics(w, h)
    box = demo.crop_box((700.0, 300.0, 500.0, 900.0))
    crop, K_crop = demo.prepare_crop(image, K_full, box, size)
    np.testing.assert_allclose(
        K_crop, geometry.crop_intrinsics(tf.constant(K_full), box, size).numpy(), rtol=1e-5)
    direct, _, _ = images.crop(tf.constant(image), K_full, box, size)
    np.testing.assert_allclose(crop.numpy(), direct.numpy(), atol=0.01)
