"""The Anny body model against body-models' own Anny forward, plus the file format's contracts.

Anny is loaded once per module (~3 s with body-models' preprocessing cache, ~15 s without) and
a reduced build (300 phenotypes for the PCA) is made from it in memory, so the tests check the
current builder, never a stale cache.
"""
import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from pose_era import geometry
from pose_era.body import BodyModel, anny, keypoints, markers
from pose_era.body import cache as body_cache
from pose_era.body import format as body_format

C = anny.ANNY_TO_OURS


@pytest.fixture(scope="module")
def anny_model():
    return anny.load_anny(verbose=False)


@pytest.fixture(scope="module")
def arrays(anny_model):
    return anny.build(anny_model, num_samples=300, num_test=100, verbose=False)


@pytest.fixture(scope="module")
def body(arrays):
    return BodyModel(arrays)


def _random_rotmats(rng, batch, joints, scale=0.5, still=()):
    aa = rng.normal(0, scale, (batch, joints, 3))
    aa[:, list(still)] = 0.0
    return Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(batch, joints, 3, 3)


def _anny_reference(anny_model, phenotype, rotmats, transl):
    """body-models' default-rig forward for our parameters, vertices returned in OUR frame.

    The rotation-frame conversion (docs/body.md): our rotmats[j] rotates joint j relative to
    its parent in the axes of our rest frame; body-models poses a bone in that bone's own rest
    frame Rot_b (phenotype dependent) and in its z-up axes. So P_b = Rot_b^T C^T R_j C Rot_b
    for the bone b of joint j (identity for merged bones), the global rotation is C^T R_0 C
    and, since body-models rotates about the root bone's head h_root while we rotate about the
    pelvis, its translation is C^T transl + Rg (h_root - pelvis).
    """
    from body_models.anny._pose import unpack_pose
    batch = len(rotmats)
    rest = anny_model.prepare_identity(phenotype[None])["rest_skeleton_transforms"][0]
    names = anny_model.joint_names
    loc, _ = anny.skeleton_bones(anny_model)
    pelvis = rest[loc[0], :3, 3]
    full = np.tile(np.eye(3), (batch, len(names), 1, 1))
    for j, (_, _, bone) in enumerate(anny.SKELETON[1:], start=1):
        b = names.index(bone)
        rot_b = rest[b, :3, :3].astype(np.float64)
        full[:, b] = rot_b.T @ C.T @ rotmats[:, j] @ C @ rot_b
    rg = C.T @ rotmats[:, 0] @ C
    t = transl @ C + (rg @ (rest[0, :3, 3] - pelvis).astype(np.float64))
    aa = Rotation.from_matrix(full.reshape(-1, 3, 3)).as_rotvec().reshape(batch, -1, 3)
    _, body_pose, head_pose, hand_pose = unpack_pose(np, aa.astype(np.float32))
    verts = anny_model.forward_vertices(
        body_pose, head_pose, hand_pose, shape=np.repeat(phenotype[None], batch, 0),
        global_rotation=Rotation.from_matrix(rg).as_rotvec().astype(np.float32),
        global_translation=t.astype(np.float32))
    return verts @ C.T


def _exact_body(anny_model, arrays, phenotype):
    """Our model with one phenotype's exact template and joints (no PCA in between)."""
    verts, joints = anny.rest_bodies(anny_model, phenotype[None])
    exact = dict(arrays, v_template=verts[0], joints_template=joints[0],
                 shapedirs=np.zeros(arrays["shapedirs"].shape[:2] + (1,), np.float32),
                 joints_shapedirs=np.zeros((len(joints[0]), 3, 1), np.float32))
    return BodyModel(exact)


def test_skinning_matches_anny_forward(anny_model, arrays):
    rng = np.random.default_rng(0)
    toes = [anny.JOINT_NAMES.index(n) for n in ("LeftToeBase", "RightToeBase")]
    for seed in (1, 2):
        phenotype = anny.sample_phenotypes(1, seed)[0]
        exact = _exact_body(anny_model, arrays, phenotype)
        rot = _random_rotmats(rng, 3, 31, still=toes)  # toes: see test below
        transl = rng.normal(size=(3, 3))
        ours = exact(np.zeros((3, 1)), rot, transl)["vertices"].numpy()
        ref = _anny_reference(anny_model, phenotype, rot, transl)
        assert np.abs(ours - ref).max() < 1e-4  # metres: 0.1 mm, float32 round-off


def test_toe_joint_is_exact_at_rest_and_moves_only_toes(anny_model, arrays):
    phenotype = anny.sample_phenotypes(1, 3)[0]
    exact = _exact_body(anny_model, arrays, phenotype)
    rot = np.tile(np.eye(3), (1, 31, 1, 1))
    toe = anny.JOINT_NAMES.index("LeftToeBase")
    rot[0, toe] = Rotation.from_rotvec([0.5, 0, 0]).as_matrix()
    moved = exact(np.zeros((1, 1)), rot, np.zeros((1, 3)))["vertices"].numpy()[0]
    ref = _anny_reference(anny_model, phenotype, np.tile(np.eye(3), (1, 31, 1, 1)),
                          np.zeros((1, 3)))[0]
    changed = np.linalg.norm(moved - ref, axis=1) > 1e-6
    assert changed.any()
    assert np.all(arrays["weights"][changed, toe] > 0)


def test_pca_model_reproduces_anny_posed(anny_model, body):
    """End to end: a fresh phenotype through its least-squares betas, posed, vs body-models."""
    rng = np.random.default_rng(4)
    phenotype = anny.sample_phenotypes(1, 99)[0]
    verts, _ = anny.rest_bodies(anny_model, phenotype[None])
    betas = anny.project_betas(body.arrays, verts)
    rot = _random_rotmats(rng, 2, 31, still=[5, 10])
    transl = rng.normal(size=(2, 3))
    ours = body(np.repeat(betas, 2, 0), rot, transl)["vertices"].numpy()
    ref = _anny_reference(anny_model, phenotype, rot, transl)
    assert np.linalg.norm(ours - ref, axis=-1).mean() < 2e-3


def test_shape_space_error(anny_model, arrays):
    assert arrays["shapedirs"].shape[-1] >= 10
    verts, joints = anny.rest_bodies(anny_model, anny.sample_phenotypes(50, 1234))
    v_err, j_err = anny.shape_errors(arrays, verts, joints)
    assert v_err < 2e-3 and j_err < 2e-3
    assert arrays["pca_vertex_error_m"] < 2e-3
    # Unit-variance betas: the training phenotypes' betas are roughly N(0, 1).
    betas = anny.project_betas(arrays, verts)
    assert 0.5 < betas.std() < 1.5


def test_rest_pose_gives_template(body):
    transl = np.array([[0.1, -0.2, 3.0]], np.float32)
    out = body(np.zeros((1, body.num_betas)), np.tile(np.eye(3), (1, body.num_joints, 1, 1)),
               transl)
    np.testing.assert_allclose(out["vertices"][0], body.arrays["v_template"] + transl, atol=1e-6)
    np.testing.assert_allclose(out["joints"][0], body.arrays["joints_template"] + transl,
                               atol=1e-6)
    np.testing.assert_allclose(out["joints"][0, 0], transl[0], atol=1e-6)  # pelvis at transl
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "vertices": (1, body.num_vertices, 3), "joints": (1, 31, 3), "markers": (1, 64, 3),
        "h36m17": (1, 17, 3), "coco17": (1, 17, 3)}
    assert all(v.dtype == tf.float32 for v in out.values())


def test_gradients_finite_and_match_finite_differences(body):
    rng = np.random.default_rng(5)
    betas = tf.Variable(rng.normal(size=(2, body.num_betas)).astype(np.float32))
    rot6d = tf.Variable(geometry.matrix_to_rot6d(
        _random_rotmats(rng, 2, body.num_joints).astype(np.float32)))
    transl = tf.Variable(rng.normal(size=(2, 3)).astype(np.float32))
    weights = tf.constant(rng.normal(size=(2, body.num_vertices, 3)).astype(np.float32))

    def loss():
        out = body(betas, geometry.rot6d_to_matrix(rot6d), transl)
        return (tf.reduce_sum(out["vertices"] * weights) + tf.reduce_sum(out["markers"])
                + tf.reduce_sum(out["h36m17"]))
    with tf.GradientTape() as tape:
        value = loss()
    grads = tape.gradient(value, [betas, rot6d, transl])
    for g in grads:
        assert np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0)
    # Central difference on one shape coefficient (float32: loose tolerance).
    eps = 1e-2
    step = np.eye(2, body.num_betas, dtype=np.float32)  # only betas[0, 0]
    step[1, 1] = 0.0
    betas.assign_add(step * eps)
    up = loss()
    betas.assign_add(step * -2 * eps)
    down = loss()
    fd = (up - down).numpy() / (2 * eps)
    assert fd == pytest.approx(grads[0].numpy()[0, 0], rel=2e-2, abs=1e-2)


def test_markers_symmetric_spread_deterministic(arrays):
    v = arrays["v_template"]
    ids, flip = arrays["markers"], arrays["marker_flip"]
    assert len(ids) == 64 and len(set(ids.tolist())) == 64
    np.testing.assert_array_equal(flip[flip], np.arange(64))
    np.testing.assert_allclose(v[ids[flip]], v[ids] * [-1, 1, 1], atol=1e-4)  # PCA mean
    mesh = markers.SymmetricMesh(v, arrays["faces"])
    assert mesh.body[ids].all()  # on the skin, not on the eyeballs or tongue
    np.testing.assert_array_equal(markers.marker_vertices(mesh, 64), ids)
    pts = v[ids]
    gaps = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(64)
    assert gaps.min() > 0.05  # no two markers within 5 cm
    covering = np.linalg.norm(v[mesh.body][:, None] - pts[None], axis=-1).min(1).max()
    assert covering < 0.2  # every skin point within 20 cm of a marker
    odd = markers.marker_vertices(mesh, 17)
    assert len(odd) == 17 and np.sum(mesh.mirror[odd] == odd) % 2 == 1


def test_keypoint_regressors(arrays, body):
    for name, flip in (("h36m17", keypoints.H36M17_FLIP), ("coco17", keypoints.COCO17_FLIP)):
        reg = arrays[name]
        assert reg.shape == (17, body.num_vertices)
        np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-5)
        mesh = markers.SymmetricMesh(arrays["v_template"], arrays["faces"])
        np.testing.assert_allclose(reg[flip][:, mesh.mirror], reg, atol=1e-6)
    # Under poses and shapes not used in the fit, joint keypoints follow the skeleton joints.
    rng = np.random.default_rng(6)
    out = body(rng.normal(size=(8, body.num_betas)), _random_rotmats(rng, 8, 31, 0.4),
               np.zeros((8, 3)))
    names = list(anny.JOINT_NAMES)
    pairs = {"pelvis": "Hips", "left_knee": "LeftLeg", "right_elbow": "RightForeArm",
             "left_wrist": "LeftHand", "right_ankle": "RightFoot", "thorax": "Neck"}
    for kp, joint in pairs.items():
        err = np.linalg.norm(out["h36m17"][:, keypoints.H36M17_NAMES.index(kp)]
                             - out["joints"][:, names.index(joint)], axis=-1)
        assert err.mean() < 0.005, (kp, err.mean())
    head = out["coco17"].numpy()[:, :5]  # nose, eyes, ears lie close together on the head
    assert np.linalg.norm(head - head.mean(1, keepdims=True), axis=-1).max() < 0.15


def test_flip_permutation_of_joints(arrays):
    flip = arrays["joint_flip"]
    names = list(anny.JOINT_NAMES)
    np.testing.assert_array_equal(flip[flip], np.arange(31))
    assert names[flip[names.index("LeftForeArm")]] == "RightForeArm"
    assert names[flip[names.index("LHipJoint")]] == "RHipJoint"
    assert flip[names.index("Spine")] == names.index("Spine")
    joints = arrays["joints_template"]
    # Anny's own rig is symmetric to 0.6 mm (Neck1 is the mean of an asymmetric vertex pair).
    np.testing.assert_allclose(joints[flip], joints * [-1, 1, 1], atol=1e-3)


def test_weights_rows_sum_to_one(arrays):
    np.testing.assert_allclose(arrays["weights"].sum(1), 1.0, atol=1e-5)
    assert arrays["faces"].shape[1] == 3 and arrays["faces"].max() < len(arrays["v_template"])


def test_bad_files_say_how_to_build(tmp_path, arrays):
    with pytest.raises(FileNotFoundError, match="build_body_model.py --source anny"):
        BodyModel.load(tmp_path / "missing.npz")
    broken = dict(arrays)
    del broken["weights"], broken["faces"]
    with pytest.raises(ValueError, match="missing keys weights, faces"):
        BodyModel(broken)
    with pytest.raises(ValueError, match="'shapedirs' has shape"):
        BodyModel(dict(arrays, shapedirs=arrays["shapedirs"][:10]))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz.*build_body_model"):
        BodyModel.load(junk)


def test_default_path_builds_once_atomically(tmp_path, monkeypatch, arrays, capsys):
    calls = []

    def fake_build(num_markers):
        calls.append(num_markers)
        return arrays
    monkeypatch.setenv("POSE_ERA_CACHE", str(tmp_path))
    monkeypatch.setattr(anny, "build", fake_build)
    path = body_cache.default_body_model_path(num_markers=64)
    assert path.parent == tmp_path / "body" and path.is_file()
    assert "building it from Anny" in capsys.readouterr().err
    assert body_cache.default_body_model_path(num_markers=64) == path and calls == [64]
    assert sorted(p.suffix for p in path.parent.iterdir()) == [".lock", ".npz"]  # no temp left
    np.testing.assert_array_equal(body_format.load(path)["markers"], arrays["markers"])
