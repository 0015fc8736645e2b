"""`python -m eval.h36m` on a tiny untrained checkpoint and tiny npz files in SPIN's layout.

The untrained network predicts the mean body placed in front of each crop's camera, which is
what the mean-pose baseline predicts too. The ground truth is built from that same mean body,
with hand-made changes whose effect on the metrics is known in closed form.
"""
import json

import cv2
import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import images
from data_pipelines.synthetic import writer
from eval import h36m as cli
from eval import metrics, report
from eval.pose_eval import MeanPoseBaseline
from models.mean_body import mean_body
from pose_era import constants
from pose_era import geometry
from pose_era.body import BodyModel
from pose_era.io import sha256_of
from tests import toy_config, toy_task
from tests.tiny_body import tiny_body_arrays
from tests.tiny_pose_workdir import STEP, make_workdir
from training import config as config_lib

N = 6
ACTIONS = ["Directions_1", "Directions", "Eating_2", "Eating", "Eating", "Directions"]
MOVED = constants.H36M_TO_J14[5]  # an LSP joint, in H36M-17 slots


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    workdir, config, _ = make_workdir(root)
    return root, workdir, config


def _mean_pose_body():
    """Mean-body keypoints, vertices and parameters (pelvis-relative; the tiny body)."""
    body = BodyModel(tiny_body_arrays())
    mean = mean_body(body)
    rot = np.tile(np.eye(3, dtype=np.float32), (1, body.num_joints, 1, 1))
    rot[0, 0] = mean["root"]
    out = body(np.zeros((1, body.num_betas), np.float32), rot, np.zeros((1, 3), np.float32))
    aa = cv2.Rodrigues(mean["root"].astype(np.float64))[0].ravel()
    return body, {k: out[k].numpy()[0] for k in ("h36m17", "vertices")}, aa


def _write_images(folder, names):
    rng = np.random.default_rng(0)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))


def _j24(h36m17):
    s = np.zeros((len(h36m17), 24, 4), np.float32)
    s[:, list(constants.J24_TO_H36M17), :3] = h36m17
    s[:, list(constants.J24_TO_H36M17), 3] = 1.0
    return s


def _h36m_folder(root, protocol=1):
    """SPIN's layout: h36m_valid_protocol<P>.npz + images/; one sample has invalid joints."""
    folder = root / "h36m"
    names = [f"images/S9_{a}.60457274_{i:06d}.jpg" for i, a in enumerate(ACTIONS)]
    _write_images(folder, names)
    _, rest, _ = _mean_pose_body()
    j3d = np.repeat(rest["h36m17"][None], N, axis=0)
    j3d = j3d - j3d[:, :1]  # SPIN's files are root-centred
    directions = np.array(["Directions" in a for a in ACTIONS])
    j3d[directions, MOVED] += np.array([0.0, 0.014, 0.0], np.float32)  # 14 mm on 1 of 14
    s = _j24(j3d)
    s[N - 1, 0, 3] = 0.0  # an invalid joint: the sample is skipped (a Directions one)
    np.savez(folder / f"h36m_valid_protocol{protocol}.npz", imgname=np.array(names),
             center=np.full((N, 2), [64.0, 48.0], np.float32),
             scale=np.full(N, 0.45, np.float32), S=s)
    return folder


def _run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_h36m_protocol_table_json_and_actions(tiny, capsys):
    root, workdir, _ = tiny
    folder = _h36m_folder(root)
    code, out, err = _run(["--ckpt", str(workdir), "--data", str(folder),
                           "--baseline", "mean_pose", "--batch_size", "4"], capsys)
    assert code == 0, err
    result = json.loads((workdir / "eval" / "h36m_p1.json").read_text())
    assert result["count"] == N - 1 and result["checkpoint"]["step"] == STEP
    assert result["dataset"] == "h36m" and result["protocol"] == 1
    assert result["options"]["pelvis"] == "spin" and result["options"]["vertex_align"] == "pelvis"
    assert result["npz_sha256"] == sha256_of(folder / "h36m_valid_protocol1.npz")
    assert result["mpvpe"] is None  # Human3.6M files have no body parameters
    per = result["per_action"]
    assert sorted(per) == ["Directions", "Eating"]
    assert per["Directions"]["count"] == 2 and per["Eating"]["count"] == 3
    # Directions: one LSP joint of 14 is 14 mm off -> 1 mm; Eating matches the mean body.
    # (Procrustes spreads that joint's error over all 14, so PA-MPJPE is not 1 mm.)
    _, rest, _ = _mean_pose_body()
    moved = rest["h36m17"].copy()
    moved[MOVED, 1] += 0.014
    pa_moved = metrics.pa_mpjpe(rest["h36m17"][None], moved[None])[0]
    assert pa_moved > 0.1
    for row in (result, result["baselines"]["mean_pose"]):
        assert row["per_action"]["Directions"]["mpjpe"] == pytest.approx(1.0, abs=0.01)
        assert row["per_action"]["Eating"]["mpjpe"] == pytest.approx(0.0, abs=0.01)
        assert row["mpjpe"] == pytest.approx(2 / 5, abs=0.01)
        assert row["per_action"]["Directions"]["pa_mpjpe"] == pytest.approx(pa_moved, abs=0.01)
        assert row["per_action"]["Eating"]["pa_mpjpe"] == pytest.approx(0.0, abs=0.01)
    assert "MPJPE" in out and "Directions" in out and "mean_pose" in out


def _synthetic_folder(root, config, name="synth"):
    """A synth_test.npz with body parameters whose ground truth is the baseline's placement
    moved by 30 mm; returns the folder and the tiny body."""
    body, rest, root_aa = _mean_pose_body()
    folder = root / name
    names = [f"images/{i:06d}.png" for i in range(4)]
    _write_images(folder, names)
    center, scale, size = np.array([64.0, 48.0]), 0.45, int(config.data.image_size)
    K = np.array([[150.0, 0, 64], [0, 150.0, 48], [0, 0, 1]], np.float32)
    # The baseline's placement for this crop, plus 30 mm: MPVPE(none) = 30 mm exactly.
    K_crop = geometry.crop_intrinsics(tf.constant(K), images.square_box(center, scale), size)
    placed = MeanPoseBaseline(body, config.data.image_size, config.model.init_fill)(K_crop[None])["vertices"][0]
    offset = np.array([0.0, 0.018, 0.024])
    transl = (placed - rest["vertices"]).mean(0) + offset
    pose = np.zeros((4, body.num_joints, 3), np.float32)
    pose[:, 0] = root_aa
    np.savez(folder / "synth_test.npz", imgname=np.array(names),
             center=np.tile(center, (4, 1)).astype(np.float32),
             scale=np.full(4, scale, np.float32), S=_j24(np.tile(rest["h36m17"] + transl,
                                                             (4, 1, 1))),
             K=np.tile(K, (4, 1, 1)), betas=np.zeros((4, body.num_betas), np.float32),
             pose=pose, transl=np.tile(transl, (4, 1)).astype(np.float32))
    (folder / "meta.json").write_text(json.dumps({"test": 4}))  # a synthetic set's marker
    return folder, body


def test_synthetic_split_has_mpvpe_and_options(tiny, capsys):
    """synth_test.npz with body parameters: MPVPE exists, and `--vertex_align none` sees the
    30 mm the ground truth is moved from the baseline's placement; options are recorded."""
    root, workdir, config = tiny
    _synthetic_folder(root, config)
    code, out, err = _run(["--ckpt", str(workdir), "--baseline", "mean_pose", "--protocol", "2",
                           "--vertex_align", "none", "--pelvis", "hips"], capsys)
    assert code == 0, err
    result = json.loads((workdir / "eval" / "synth_p2.json").read_text())
    assert result["dataset"] == "synth" and result["per_action"] == {} and result["count"] == 4
    assert result["options"]["vertex_align"] == "none" and result["options"]["pelvis"] == "hips"
    base = result["baselines"]["mean_pose"]
    assert base["mpvpe"] == pytest.approx(30.0, abs=0.05)
    assert result["mpvpe"] == pytest.approx(30.0, abs=0.5)
    assert base["mpjpe"] == pytest.approx(0.0, abs=0.01)
    assert "MPVPE" in out and "30.0" in out


def test_a_make_synth_folder_as_data(tiny, tmp_path, capsys):
    """--data DIR with a tools/make_synth.py folder (meta.json + synth_test.npz) scores its test
    split like the config's own; a set made with another body model is refused in one line."""
    root, workdir, config = tiny
    folder, body = _synthetic_folder(tmp_path, config, "fresh_set")
    meta = {"num_joints": body.num_joints, "num_betas": body.num_betas,
            "num_markers": body.num_markers}
    (folder / "meta.json").write_text(json.dumps(meta))
    code, out, err = _run(["--ckpt", str(workdir), "--data", str(folder), "--baseline",
                           "mean_pose", "--vertex_align", "none"], capsys)
    assert code == 0, err
    result = json.loads((workdir / "eval" / "synth_fresh_set_p1.json").read_text())
    assert result["npz"] == str(folder / "synth_test.npz") and result["count"] == 4
    assert result["baselines"]["mean_pose"]["mpvpe"] == pytest.approx(30.0, abs=0.05)
    (folder / "meta.json").write_text(json.dumps(dict(meta, num_markers=64)))
    code, _, err = _run(["--ckpt", str(workdir), "--data", str(folder)], capsys)
    assert code == 2 and "another body model" in err and len(err.strip().splitlines()) == 1


def test_a_fresh_synthetic_split_renders_only_the_test_images(tmp_path, capsys, monkeypatch):
    """--data synth where the config's set does not exist yet makes its test split alone (no
    training images rendered first), and that split is the whole set's of the same seed."""
    workdir, config, _ = make_workdir(tmp_path)
    saved = json.loads((workdir / "config.json").read_text())
    saved["data"].update(dir="", synth_train=6, synth_test=3)
    (workdir / "config.json").write_text(json.dumps(saved))
    monkeypatch.setenv("POSE_ERA_CACHE", str(tmp_path / "cache"))
    code, _, err = _run(["--ckpt", str(workdir)], capsys)
    assert code == 0, err
    assert json.loads((workdir / "eval" / "synth_p1.json").read_text())["count"] == 3
    folder = tmp_path / "cache" / "synth" / f"6_3_0_{config.data.image_size}"
    assert (folder / writer.NPZ_NAME).is_file() and not list(folder.glob("train-*"))
    whole = writer.write_dataset(tmp_path / "whole", 6, 3, 0, body_path=config.body.path,
                                 image_size=config.data.image_size, progress=False)
    with np.load(folder / writer.NPZ_NAME) as mine, np.load(whole / writer.NPZ_NAME) as theirs:
        assert mine.files == theirs.files
        for key in mine.files:
            np.testing.assert_array_equal(mine[key], theirs[key])


def test_bad_inputs_are_one_line_and_exit_2(tiny, tmp_path, capsys):
    root, workdir, _ = tiny
    cases = [
        (["--ckpt", str(tmp_path / "nope")], "neither a training workdir"),
        (["--ckpt", str(workdir), "--data", str(tmp_path)], "h36m_valid_protocol1.npz"),
        (["--ckpt", str(workdir), "--data", str(tmp_path / "missing")], "is not a folder"),
    ]
    for argv, message in cases:
        code, _, err = _run(argv, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["--ckpt", str(workdir), "--protocol", "3"])
    assert exit_info.value.code == 2


def test_wrong_task_and_config_mismatch(tiny, tmp_path, capsys):
    root, workdir, _ = tiny
    # a workdir of another task
    other = tmp_path / "toy"
    config_lib.save_json(toy_config.get_config(), other)
    model = toy_task.toy_model()
    ckpt = tf.train.Checkpoint(model=model, step=tf.Variable(1, dtype=tf.int64))
    tf.train.CheckpointManager(ckpt, str(other / "ckpt"), 1).save(checkpoint_number=1)
    code, _, err = _run(["--ckpt", str(other)], capsys)
    assert code == 2 and "not 'pose'" in err
    # the config no longer describes the checkpoint's model
    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    config = json.loads((workdir / "config.json").read_text())
    config["model"]["head"]["width"] = 32
    (mismatch / "config.json").write_text(json.dumps(config))
    (mismatch / "ckpt").symlink_to(workdir / "ckpt")
    code, _, err = _run(["--ckpt", str(mismatch)], capsys)
    assert code == 2 and "does not match" in err and len(err.strip().splitlines()) == 1


def test_action_names_follow_spin_image_names():
    assert report.action_of("images/S9_Directions_1.60457274_000001.jpg") == "Directions"
    assert report.action_of("images/S11_WalkTogether.54138969_000006.jpg") == "WalkTogether"
    assert report.action_of("S1_TakingPhoto_1.55011271_000011.jpg") == "Photo"
    assert report.action_of("images/000001.png") is None
    assert report.actions_of(["S9_Eating.60457274_000001.jpg", "x.png"]) is None
