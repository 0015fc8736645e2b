"""Synthetic dataset: joint-limit conventions by forward kinematics, keypoint visibility against
an analytic occluder, and a tiny dataset made twice (determinism, format, labels reproduced by
the body model from the stored parameters, SPIN npz layout, atomicity)."""
import filecmp
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from data_pipelines.synthetic import records, sampler, scene, writer
from pose_era import constants
from pose_era import renderer
from pose_era import geometry
from pose_era.body import BodyModel
from pose_era.body import anatomy
from pose_era.body import anny as anny_builder
from pose_era.body import format as body_format
from tests.tiny_body import JOINTS, tiny_body_arrays

SIZE = 64


def tube_body_arrays():
    """The tiny stick body plus a closed box-shaped tube around every bone (8 extra vertices
    skinned to the bone's parent joint), so that it renders and occludes."""
    arrays = tiny_body_arrays()
    names = list(JOINTS)
    rest = np.array([JOINTS[n][1] for n in names])
    verts, faces, owner = [], [], []
    for j in range(1, len(names)):
        p = JOINTS[names[j]][0]
        axis = (rest[j] - rest[p]) / np.linalg.norm(rest[j] - rest[p])
        u = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
        u /= np.linalg.norm(u)
        w = np.cross(axis, u)
        ring = [0.04 * (a * u + b * w) for a, b in ((1, 1), (-1, 1), (-1, -1), (1, -1))]
        box = np.array([end + r for end in (rest[p], rest[j]) for r in ring])
        base = len(arrays["v_template"]) + len(verts)
        hull = ConvexHull(box)
        for simplex, eq in zip(hull.simplices, hull.equations):
            a, b, c = box[simplex]
            outward = np.cross(b - a, c - a) @ eq[:3] > 0
            faces.append(base + (simplex if outward else simplex[::-1]))
        verts += list(box)
        owner += [p] * 8
    extra = len(verts)
    arrays["v_template"] = np.concatenate([arrays["v_template"], verts])
    arrays["shapedirs"] = np.concatenate([arrays["shapedirs"],
                                          np.zeros((extra,) + arrays["shapedirs"].shape[1:])])
    weights = np.zeros((extra, len(names)))
    weights[np.arange(extra), owner] = 1.0
    arrays["weights"] = np.concatenate([arrays["weights"], weights])
    for key in ("h36m17", "coco17"):
        arrays[key] = np.concatenate([arrays[key], np.zeros((17, extra))], axis=1)
    arrays["faces"] = np.array(faces)
    return arrays


@pytest.fixture(scope="module")
def body_file(tmp_path_factory):
    return body_format.save(tmp_path_factory.mktemp("body") / "tube.npz", tube_body_arrays())


@pytest.fixture(scope="module")
def body(body_file):
    return BodyModel.load(body_file)


def _skeleton(body):
    rest = body.rest_joints(np.zeros((1, body.num_betas), np.float32))[0].numpy()
    return sampler.Skeleton(body.joint_names, body.parents, rest)


def _posed_joints(body, skeleton, angles):
    rot = skeleton.local_rotations(angles)
    out = body(np.zeros((1, body.num_betas), np.float32), rot[None].astype(np.float32),
               np.zeros((1, 3), np.float32))
    return dict(zip(body.joint_names, out["joints"][0].numpy()))


def _angles(skeleton, **by_joint):
    a = np.zeros((len(skeleton.names), 3))
    for name, (ext, abd, rot) in by_joint.items():
        a[skeleton.names.index(name)] = np.deg2rad([ext, abd, rot])
    return a


def test_joint_classes_of_anny_and_smpl_names():
    names = anny_builder.JOINT_NAMES
    parents = anny_builder.PARENTS
    classes = [anatomy.joint_class(n, p < 0) for n, p in zip(names, parents)]
    assert None not in classes
    expect = {"LeftUpLeg": ("hip", 1), "RightLeg": ("knee", -1), "LowerBack": ("spine", 0),
              "LeftShoulder": ("clavicle", 1), "RightArm": ("shoulder", -1),
              "LThumb": ("finger", 1), "Head": ("neck", 0), "Hips": ("root", 0)}
    for name, (cls, side) in expect.items():
        assert classes[names.index(name)] == cls and anatomy.joint_side(name) == side
    assert anatomy.joint_class("left_shoulder", False) == "shoulder"    # SMPL: glenohumeral
    assert anatomy.joint_class("right_collar", False) == "clavicle"
    assert anatomy.joint_side("right_collar") == -1 and anatomy.joint_side("spine3") == 0


def test_joint_angle_conventions_by_forward_kinematics(body):
    sk = _skeleton(body)
    rest = _posed_joints(body, sk, np.zeros((len(sk.names), 3)))
    # body frame of the tiny model: +x = its left, +y up, +z forward
    j = _posed_joints(body, sk, _angles(sk, l_knee=(90, 0, 0)))
    shin = j["l_ankle"] - j["l_knee"]
    assert shin[2] < -0.4 and abs(shin[1]) < 0.01          # knee flexion: shin backwards
    j = _posed_joints(body, sk, _angles(sk, l_hip=(-90, 0, 0)))
    assert (j["l_knee"] - j["l_hip"])[2] > 0.4               # hip flexion: thigh forwards
    j = _posed_joints(body, sk, _angles(sk, l_shoulder=(0, 0, 0), r_shoulder=(0, 0, 0)))
    for side, sign in (("l", 1), ("r", -1)):                 # neutral: arms hang at the side
        arm = j[f"{side}_elbow"] - j[f"{side}_shoulder"]
        assert arm[1] < -0.24 and 0 < sign * arm[0] < 0.03
    j = _posed_joints(body, sk, _angles(sk, l_shoulder=(0, 90, 0), r_shoulder=(0, 90, 0)))
    for side, sign in (("l", 1), ("r", -1)):                 # abduction raises them sideways
        arm = j[f"{side}_elbow"] - j[f"{side}_shoulder"]
        assert sign * arm[0] > 0.24 and abs(arm[1]) < 0.02
    j = _posed_joints(body, sk, _angles(sk, l_shoulder=(0, 0, 0), l_elbow=(-90, 0, 0)))
    assert (j["l_wrist"] - j["l_elbow"])[2] > 0.24           # elbow flexion: forearm forwards
    np.testing.assert_allclose(rest["l_ankle"], JOINTS["l_ankle"][1], atol=1e-6)


def test_sampled_poses_stay_inside_the_limits(body):
    sk = _skeleton(body)
    rng = np.random.default_rng(0)
    lo, hi = sk.ranges[..., 0], sk.ranges[..., 1]
    for _ in range(50):
        a = sk.sample_angles(rng)
        assert np.all(a >= lo - 1e-12) and np.all(a <= hi + 1e-12)
    rot = sk.local_rotations(a)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3),
                                                                              rot.shape), atol=1e-9)
    # the spine's total range is split over its joints (tiny body: one spine joint)
    assert np.allclose(np.rad2deg(sk.ranges[sk.names.index("spine")]),
                       sampler.JOINT_RANGES["spine"])


def test_everyday_poses_sit_and_walk_with_both_legs_and_stay_inside_the_limits(body):
    """everyday_angles moves the legs together (sitting, crouching: both thighs forward, knees
    bent; walking: one thigh forward, one back), unlike sample_angles' independent joints, and
    raises about one arm in seven above the shoulder."""
    sk = _skeleton(body)
    rng = np.random.default_rng(0)
    lo, hi = sk.ranges[..., 0], sk.ranges[..., 1]
    everyday = np.stack([sk.everyday_angles(rng) for _ in range(400)])
    independent = np.stack([sk.sample_angles(rng) for _ in range(400)])
    assert np.all(everyday >= lo - 1e-12) and np.all(everyday <= hi + 1e-12)
    hips, knees = ([sk.names.index(f"{s}_{j}") for s in "lr"] for j in ("hip", "knee"))
    ext = np.rad2deg(everyday[:, hips, 0])
    seated = np.all(ext < -60, axis=1) & np.all(np.rad2deg(everyday[:, knees, 0]) > 60, axis=1)
    assert 0.2 < seated.mean() < 0.42                     # sit (25 %) and most crouches (10 %)
    assert np.all(np.rad2deg(independent[:, hips, 0]) < -60, axis=1).mean() < 0.05
    assert np.corrcoef(ext.T)[0, 1] > 0.5
    assert abs(np.corrcoef(independent[:, hips, 0].T)[0, 1]) < 0.2
    striding = (np.abs(ext[:, 0] - ext[:, 1]) > 12) & (np.sign(ext[:, 0]) != np.sign(ext[:, 1]))
    assert 0.12 < striding.mean() < 0.4                   # walk (25 %), most strides > 12 deg
    for i in np.flatnonzero(seated)[:3]:                  # by forward kinematics: knees forward
        j = _posed_joints(body, sk, everyday[i])
        for side in "lr":
            assert (j[f"{side}_knee"] - j[f"{side}_hip"]) @ sk.forward > 0.25
    shoulders = [sk.names.index(f"{s}_shoulder") for s in "lr"]
    raised = np.rad2deg(everyday[:, shoulders, 0]) < -90
    assert 0.08 < raised.mean() < 0.25                    # "raise": 15 % of arms
    with pytest.raises(ValueError, match="poses must be one of"):
        sampler.sample_pose(sk, rng, poses="natural")


def test_root_rotation_puts_the_body_upright_facing_the_camera(body):
    sk = _skeleton(body)
    r = sk.root_rotation(0.0, 0.0, 0.0)
    np.testing.assert_allclose(r @ sk.up, [0, -1, 0], atol=1e-9)        # camera y points down
    np.testing.assert_allclose(r @ sk.forward, [0, 0, -1], atol=1e-9)   # faces the camera
    np.testing.assert_allclose(r @ sk.left, [1, 0, 0], atol=1e-9)       # its left on the right


def test_max_yaw_bounds_the_turn_from_the_camera_and_keeps_the_body_pose(body):
    """The body's forward axis stays within max_yaw (+ the pitch/roll jitter) of facing the
    camera, and the joint angles are the same draws as with any other max_yaw."""
    sk = _skeleton(body)
    turns, wide, narrow = [], [], []
    for i in range(200):
        for store, max_yaw in ((wide, 180.0), (narrow, 30.0)):
            store.append(sampler.sample_pose(sk, np.random.default_rng(i), max_yaw))
        facing = Rotation.from_rotvec(narrow[-1][0]).as_matrix() @ sk.forward
        turns.append(np.degrees(np.arctan2(-facing[0], -facing[2])))
    turns = np.abs(turns)
    assert turns.max() < 30 + 25 and turns.max() > 20   # jitter: pitch <= 30, roll <= 20 deg
    np.testing.assert_allclose(np.stack(wide)[:, 1:], np.stack(narrow)[:, 1:])
    wide_turns = [np.degrees(np.arccos(-(Rotation.from_rotvec(p[0]).as_matrix() @ sk.forward)[2]))
                  for p in wide]
    assert max(wide_turns) > 150


def test_keypoint_visibility_against_an_occluding_plane():
    K = np.array([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]], np.float32)
    plane = np.array([[-0.5, -0.5, 2], [-0.5, 0.5, 2], [0.5, -0.5, 2], [0.5, 0.5, 2]],
                     np.float32)                      # covers pixels 19.5..44.5 at depth 2
    frags = renderer.rasterize(plane, np.array([[0, 1, 2], [2, 1, 3]]), K, SIZE, SIZE)
    points = np.array([[0, 0, 1.5],      # in front of the plane
                       [0.1, 0, 2.05],   # just behind, within tolerance
                       [0, 0.1, 3.0],    # far behind: occluded
                       [1.5, 0, 3.0],    # behind, but beside the plane: visible
                       [4.0, 0, 2.0],    # outside the image
                       [0, 0, -1.0]],    # behind the camera
                      np.float32)
    uv = (points @ K.T)[:, :2] / np.abs(points[:, 2:])
    codes = scene.keypoint_visibility(points, uv, frags.depth, np.full(6, 0.1, np.float32))
    assert codes.tolist() == [scene.VISIBLE, scene.VISIBLE, scene.OCCLUDED, scene.VISIBLE,
                              scene.OUTSIDE, scene.OUTSIDE]


def _make(out, body_file, workers, seed=7):
    return writer.write_dataset(out, 4, 3, seed, body_path=body_file, workers=workers,
                                image_size=SIZE, progress=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, body_file):
    """The same tiny dataset made in this process and with two worker processes."""
    root = tmp_path_factory.mktemp("synth")
    mp = pytest.MonkeyPatch()
    mp.setattr(writer, "SHARD_SIZE", 2)            # several shards per split
    try:
        (root / "a.tmp-stale").mkdir()             # left by a killed run
        a = _make(root / "a", body_file, workers=0)
        b = _make(root / "b", body_file, workers=2)
    finally:
        mp.undo()
    return a, b


def test_dataset_files_and_determinism(dataset):
    a, b = dataset
    assert not (a.parent / "a.tmp-stale").exists()
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert names == ["images/test_0000000.jpg", "images/test_0000001.jpg",
                     "images/test_0000002.jpg", "meta.json", "synth_test.npz",
                     "test-00000-of-00002.tfrecord", "test-00001-of-00002.tfrecord",
                     "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert mismatch == [] and errors == []
    meta = json.loads((a / "meta.json").read_text())
    assert (meta["train"], meta["test"], meta["seed"], meta["image_size"]) == (4, 3, 7, SIZE)


def _parsed(files):
    ds = tf.data.TFRecordDataset(files).map(records.parse_example)
    return [{k: v.numpy() for k, v in ex.items()} for ex in ds]


def test_parse_example_schema(dataset, body):
    examples = _parsed(records.train_files(dataset[0]))
    assert len(examples) == 4
    shapes = {"image": (SIZE, SIZE, 3), "K": (3, 3), "kp2d": (17, 3), "j3d": (17, 3),
              "markers": (body.num_markers, 3), "betas": (body.num_betas,),
              "pose": (body.num_joints, 3), "transl": (3,), "has_j3d": (), "has_markers": (),
              "has_params": ()}
    for ex in examples:
        for key, shape in shapes.items():
            assert ex[key].shape == shape and ex[key].dtype == np.float32, key
        assert 0 <= ex["image"].min() and ex["image"].max() <= 1 and ex["image"].std() > 0.01
        assert ex["has_j3d"] == ex["has_markers"] == ex["has_params"] == 1
        assert set(np.unique(ex["kp2d"][:, 2])) <= {0.0, 1.0}
    assert [ex["imgname"] for ex in examples] == [f"images/train_{i:07d}.jpg".encode()
                                                  for i in range(4)]
    assert len({ex["image"].tobytes() for ex in examples}) == 4


def test_parse_labels_reads_what_parse_example_reads(dataset):
    """The label-only reader (no image decoding) gives parse_example's K, markers and kp2d
    coordinates, flat as stored."""
    files = records.train_files(dataset[0])
    labels = [{k: v.numpy() for k, v in records.parse_labels(r, ("K", "kp2d", "markers")).items()}
              for r in tf.data.TFRecordDataset(files)]
    for lab, ex in zip(labels, _parsed(files), strict=True):
        np.testing.assert_array_equal(lab["K"].reshape(3, 3), ex["K"])
        np.testing.assert_array_equal(lab["markers"].reshape(-1, 3), ex["markers"])
        np.testing.assert_array_equal(lab["kp2d"].reshape(17, 3)[:, :2], ex["kp2d"][:, :2])


def test_labels_are_the_body_model_of_the_stored_parameters(dataset, body):
    raw = [tf.train.Example.FromString(r.numpy())
           for r in tf.data.TFRecordDataset(records.train_files(dataset[0]))]
    codes = np.stack([np.array(r.features.feature["kp2d"].float_list.value).reshape(17, 3)[:, 2]
                      for r in raw])
    ex = _parsed(records.train_files(dataset[0]))
    stack = {k: np.stack([e[k] for e in ex]) for k in ("betas", "pose", "transl", "K", "kp2d",
                                                        "j3d", "markers")}
    out = body(stack["betas"], geometry.axis_angle_to_matrix(stack["pose"]), stack["transl"])
    np.testing.assert_allclose(stack["j3d"], out["h36m17"].numpy(), atol=1e-5)
    np.testing.assert_allclose(stack["markers"], out["markers"].numpy(), atol=1e-5)
    # 2D keypoints: NumPy float64 pinhole projection of the body's COCO-17 points with K
    coco = out["coco17"].numpy().astype(np.float64)
    p = np.einsum("nij,nkj->nki", stack["K"].astype(np.float64), coco)
    uv = p[..., :2] / p[..., 2:]
    np.testing.assert_allclose(stack["kp2d"][..., :2], uv, atol=1e-3)
    inside = (uv >= 0).all(-1) & (uv < SIZE).all(-1) & (coco[..., 2] > 0)
    assert np.array_equal(codes > 0, inside)                 # 0 exactly when outside
    np.testing.assert_array_equal(stack["kp2d"][..., 2], (codes > 0).astype(np.float32))
    assert inside.sum() > 17                                 # the person fills the crop
    assert (coco[..., 2] > 1.0).all()                        # in front of the camera


def test_spin_npz_layout(dataset):
    a = dataset[0]
    with np.load(a / writer.NPZ_NAME) as z:
        npz = {k: z[k] for k in z.files}
    assert {"imgname", "center", "scale", "S", "betas", "pose", "transl", "K"} <= set(npz)
    n = 3
    assert npz["S"].shape == (n, 24, 4) and npz["center"].shape == (n, 2)
    assert npz["scale"].shape == (n,) and npz["K"].shape == (n, 3, 3)
    np.testing.assert_allclose(npz["center"], SIZE / 2)
    np.testing.assert_allclose(npz["scale"] * 200, SIZE)
    test = _parsed(records.test_files(a))
    for i, ex in enumerate(test):
        assert npz["imgname"][i] == ex["imgname"].decode()
        image = tf.io.decode_jpeg(tf.io.read_file(str(a / npz["imgname"][i]))).numpy()
        np.testing.assert_array_equal(image, np.round(ex["image"] * 255).astype(np.uint8))
        j3d = ex["j3d"] - ex["j3d"][0]                        # SPIN's files are pelvis-centred
        for k in range(17):                                   # SPIN's eval maps, both sides
            np.testing.assert_allclose(npz["S"][i, constants.J24_TO_J17[k], :3],
                                       j3d[constants.H36M_TO_J17[k]], atol=1e-6)
        valid = np.zeros(24)
        valid[list(constants.J24_TO_J17)] = 1
        np.testing.assert_array_equal(npz["S"][i, :, 3], valid)
        for key in ("betas", "pose", "transl", "K"):
            np.testing.assert_array_equal(npz[key][i], ex[key])


def test_failed_build_leaves_nothing(tmp_path, body_file, monkeypatch):
    calls = []

    def failing(path, examples):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("disk full (injected)")
        return write_shard(path, examples)

    write_shard = records.write_shard
    monkeypatch.setattr(records, "write_shard", failing)
    monkeypatch.setattr(writer, "SHARD_SIZE", 2)
    with pytest.raises(RuntimeError, match="injected"):
        _make(tmp_path / "ds", body_file, workers=0)
    assert len(calls) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ds.lock"]


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_split_by_split_gives_the_same_folder(dataset, body_file, tmp_path, monkeypatch,
                                              capsys):
    """The test split alone (what evaluation makes) is the whole set's test split; adding the
    train split later (training through ensure, or make_synth) ends with the whole set's folder,
    byte for byte, after a failed addition that left the folder as it was and a killed one's
    stray file."""
    monkeypatch.setattr(writer, "SHARD_SIZE", 2)
    whole, out = dataset[0], tmp_path / "a"

    def ensure(splits):
        return writer.ensure_synthetic_dataset(out, 4, 3, 7, body_path=body_file, workers=0,
                                               image_size=SIZE, progress=False, splits=splits)

    ensure(("test",))
    test_only = _files(out)
    assert test_only == [n for n in _files(whole) if not n.startswith("train-")]
    assert json.loads((out / "meta.json").read_text())["splits"] == ["test"]
    with np.load(out / writer.NPZ_NAME) as mine, np.load(whole / writer.NPZ_NAME) as theirs:
        assert mine.files == theirs.files
        for key in mine.files:
            np.testing.assert_array_equal(mine[key], theirs[key])
    assert filecmp.cmpfiles(out, whole, [n for n in test_only if n != "meta.json"],
                            shallow=False)[1:] == ([], [])
    assert writer.made_splits(writer.read_meta(out)) == {"test"}

    write_shard = records.write_shard

    def failing(path, examples):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(records, "write_shard", failing)
    with pytest.raises(RuntimeError, match="injected"):
        ensure(("train",))
    assert _files(out) == test_only and not list(tmp_path.glob("a.tmp-*"))
    monkeypatch.setattr(records, "write_shard", write_shard)
    (out / "train-00000-of-00002.tfrecord").write_bytes(b"half moved")   # a killed addition
    monkeypatch.syspath_prepend("tools")
    import make_synth
    assert make_synth.main(["--out", str(out), "--train", "4", "--test", "3", "--seed", "7",
                            "--body", str(body_file), "--workers", "0", "--image-size",
                            str(SIZE), "--no-progress"]) == 0
    assert f"wrote {out}: 4 train images" in capsys.readouterr().out
    assert _files(out) == _files(whole)
    assert filecmp.cmpfiles(out, whole, _files(whole), shallow=False)[1:] == ([], [])
    assert writer.made_splits(writer.read_meta(out)) == {"train", "test"}


def test_commands_that_render_leave_tensorflow_unstarted_on_import():
    """The writer's spawned workers re-import the main module (python -m eval.h36m, the training
    driver) and then set their thread counts, which TensorFlow refuses once started: importing
    those must not start it (a tensor made at import did, and the workers died in a loop)."""
    code = ("import eval.h36m, training.driver, tensorflow as tf; "
            "tf.config.threading.set_intra_op_parallelism_threads(1)")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-500:]


def test_ensure_reuses_or_refuses(dataset, body_file, monkeypatch):
    monkeypatch.setattr(writer, "SHARD_SIZE", 2)
    a = dataset[0]
    stamp = (a / "meta.json").stat().st_mtime_ns
    assert writer.ensure_synthetic_dataset(a, 4, 3, 7, body_path=body_file, image_size=SIZE,
                                           progress=False) == a
    assert (a / "meta.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="other arguments"):
        writer.ensure_synthetic_dataset(a, 4, 3, 8, body_path=body_file, image_size=SIZE)
    with pytest.raises(FileExistsError, match="other arguments"):
        writer.ensure_synthetic_dataset(a, 4, 3, 7, body_path=body_file, image_size=SIZE,
                                        max_yaw=45)


def test_bad_input_is_one_clear_line(tmp_path, body_file, capsys, monkeypatch):
    with pytest.raises(ValueError, match="--train must be >= 0"):
        writer.write_dataset(tmp_path / "x", -1, 3, 0, body_path=body_file)
    with pytest.raises(ValueError, match="max yaw must be in"):
        writer.write_dataset(tmp_path / "x", 1, 1, 0, body_path=body_file, max_yaw=200)
    with pytest.raises(FileNotFoundError, match="build_body_model"):
        writer.write_dataset(tmp_path / "x", 1, 1, 0, body_path=tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError, match="make_synth"):
        records.train_files(tmp_path)
    monkeypatch.syspath_prepend("tools")
    import make_synth
    assert make_synth.main(["--out", str(tmp_path / "y"), "--train", "0", "--test", "0",
                            "--body", str(body_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing to make" in err[0]
    assert not (tmp_path / "y").exists()
