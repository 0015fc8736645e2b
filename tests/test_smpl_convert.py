"""SMPL conversion on a file made in SMPL's exact .pkl layout (chumpy Ch, old-scipy csc_matrix).

The file is written with stand-in classes registered under chumpy's and old scipy's module
names, so the pickle references `chumpy.ch.Ch` and `scipy.sparse.csc.csc_matrix` exactly as the
official files do; the converter must read it without chumpy installed. The converted model's
forward is checked against an independent float64 NumPy SMPL (with pose blend shapes).
"""
import copyreg
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from scipy.spatial.transform import Rotation

from pose_era.body import BodyModel, smpl
from pose_era.body import format as body_format

ROOT = Path(__file__).resolve().parents[1]
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


class _Ch:
    """Pickles like chumpy.ch.Ch: object state dict with the array under 'x'."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()

    def __reduce_ex__(self, protocol):
        return (copyreg._reconstructor, (type(self), object, None), self.__dict__)


class _OldCsc:
    """Pickles like an old scipy csc_matrix: buffers in the instance dict."""

    def __init__(self, m):
        m = scipy.sparse.csc_matrix(m)
        self.data, self.indices, self.indptr = m.data, m.indices, m.indptr
        self._shape, self.maxprint = m.shape, 50

    def __reduce_ex__(self, protocol):
        return (copyreg._reconstructor, (type(self), object, None), self.__dict__)


def _write_smpl_pkl(path, model):
    """Write `model` with chumpy / old-scipy class references, as the official files have."""
    fake = {"chumpy": types.ModuleType("chumpy"), "chumpy.ch": types.ModuleType("chumpy.ch"),
            "scipy.sparse.csc": types.ModuleType("scipy.sparse.csc")}
    _Ch.__module__, _Ch.__qualname__ = "chumpy.ch", "Ch"
    _OldCsc.__module__, _OldCsc.__qualname__ = "scipy.sparse.csc", "csc_matrix"
    fake["chumpy.ch"].Ch = _Ch
    fake["scipy.sparse.csc"].csc_matrix = _OldCsc
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        with open(path, "wb") as f:  # protocol 2 + fix_imports writes copy_reg, as Python 2 did
            pickle.dump(model, f, protocol=2, fix_imports=True)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _fake_smpl(num_vertices=6890, num_betas=10, seed=0):
    """Random but well-formed SMPL arrays; the mesh is left/right symmetric (vert_sym_idxs)."""
    rng = np.random.default_rng(seed)
    half = num_vertices // 2
    left = rng.uniform([0.01, -1.2, -0.15], [0.5, 0.5, 0.15], (half, 3))
    v = np.concatenate([left, left * [-1, 1, 1]])
    sym = np.concatenate([np.arange(half) + half, np.arange(half)])
    faces = rng.integers(0, num_vertices, (2 * num_vertices, 3))
    weights = rng.random((num_vertices, 24)) ** 4
    weights /= weights.sum(1, keepdims=True)
    j_reg = np.zeros((24, num_vertices))
    for j in range(24):  # sparse, non-negative rows summing to one, as SMPL's
        ids = rng.choice(num_vertices, 8, replace=False)
        j_reg[j, ids] = rng.random(8)
    j_reg /= j_reg.sum(1, keepdims=True)
    kintree = np.array([[4294967295] + SMPL_PARENTS[1:], list(range(24))], np.int64)
    return {
        "v_template": v, "f": faces.astype(np.uint32), "weights": weights,
        "shapedirs": _Ch(rng.normal(0, 0.01, (num_vertices, 3, num_betas))),
        "posedirs": rng.normal(0, 0.005, (num_vertices, 3, 207)),
        "J_regressor": _OldCsc(j_reg), "J_regressor_prior": _OldCsc(j_reg),
        "weights_prior": weights, "kintree_table": kintree, "J": j_reg @ v,
        "vert_sym_idxs": sym, "bs_style": "lbs", "bs_type": "lrotmin",
        "pose_training_info": {"fake": True},
    }, j_reg


def _smpl_numpy(raw, j_reg, betas, pose_aa, transl):
    """Independent float64 SMPL forward (Loper et al. 2015), one body."""
    v = raw["v_template"] + raw["shapedirs"].x @ betas
    joints = j_reg @ v
    rots = Rotation.from_rotvec(pose_aa).as_matrix()
    v = v + raw["posedirs"] @ (rots[1:] - np.eye(3)).reshape(-1)
    g = [None] * 24
    for j in range(24):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = joints[j] - (joints[SMPL_PARENTS[j]] if j else 0)
        g[j] = local if j == 0 else g[SMPL_PARENTS[j]] @ local
    a = np.stack(g)
    a[:, :3, 3] -= np.einsum("jik,jk->ji", a[:, :3, :3], joints)
    t = np.einsum("vj,jab->vab", raw["weights"], a)
    verts = np.einsum("vab,vb->va", t[:, :3, :3], v) + t[:, :3, 3]
    return verts + transl, np.stack([x[:3, 3] for x in g]) + transl


@pytest.fixture(scope="module")
def smpl_file(tmp_path_factory):
    raw, j_reg = _fake_smpl()
    path = tmp_path_factory.mktemp("smpl") / "SMPL_NEUTRAL.pkl"
    _write_smpl_pkl(path, raw)
    return path, raw, j_reg


def test_file_really_references_chumpy(smpl_file):
    path, _, _ = smpl_file
    data = path.read_bytes()
    assert b"chumpy.ch" in data and b"scipy.sparse.csc" in data and b"copy_reg" in data
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(data)  # the plain unpickler needs chumpy


def test_reads_without_chumpy(smpl_file):
    path, raw, j_reg = smpl_file
    read = smpl.read_smpl(path)
    np.testing.assert_array_equal(read["shapedirs"], raw["shapedirs"].x)
    np.testing.assert_array_equal(read["J_regressor"], j_reg)
    assert "chumpy" not in sys.modules


def test_converted_forward_matches_numpy_smpl(smpl_file):
    path, raw, j_reg = smpl_file
    body = BodyModel(smpl.convert(path, num_markers=32))
    assert (body.num_joints, body.num_betas, body.num_markers) == (24, 10, 32)
    rng = np.random.default_rng(1)
    betas = rng.normal(size=(2, 10))
    pose = rng.normal(0, 0.4, (2, 24, 3))
    transl = rng.normal(size=(2, 3))
    rot = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(2, 24, 3, 3)
    out = body(betas, rot, transl)
    for b in range(2):
        verts, joints = _smpl_numpy(raw, j_reg, betas[b], pose[b], transl[b])
        np.testing.assert_allclose(out["vertices"][b].numpy(), verts, atol=2e-5)
        np.testing.assert_allclose(out["joints"][b].numpy(), joints, atol=2e-5)


def test_keypoints_and_markers(smpl_file):
    path, _, j_reg = smpl_file
    arrays = smpl.convert(path, num_markers=16)
    coco = arrays["coco17"]
    np.testing.assert_allclose(coco.sum(1), 1.0, rtol=1e-6)
    assert coco[0, smpl.SMPL_VERTEX_IDS["nose"]] == 1.0
    np.testing.assert_allclose(coco[5], j_reg[16], rtol=1e-6)  # left shoulder
    np.testing.assert_allclose(arrays["h36m17"].sum(1), 1.0, rtol=1e-6)
    h36m = np.random.default_rng(2).random((17, 6890))
    np.save(path.parent / "J_regressor_h36m.npy", h36m)
    given = smpl.convert(path, num_markers=16, h36m_regressor=path.parent / "J_regressor_h36m.npy")
    np.testing.assert_allclose(given["h36m17"], h36m, rtol=1e-6)
    v = arrays["v_template"]
    np.testing.assert_allclose(v[arrays["markers"][arrays["marker_flip"]]],
                               v[arrays["markers"]] * [-1, 1, 1], atol=1e-6)
    body_format.validate(arrays)


def test_cli_converts_and_reports_errors(smpl_file, tmp_path):
    path, _, _ = smpl_file
    tool = [sys.executable, str(ROOT / "tools" / "build_body_model.py")]
    out = tmp_path / "smpl.npz"
    ok = subprocess.run([*tool, "--source", "smpl", "--path", str(path), "--out", str(out)],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert BodyModel.load(out).num_joints == 24
    bad = subprocess.run([*tool, "--source", "smpl", "--path", str(tmp_path / "nope.pkl"),
                          "--out", str(tmp_path / "x.npz")], capture_output=True, text=True,
                         cwd=ROOT)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: SMPL model file {tmp_path / 'nope.pkl'} does not exist"]
    assert not (tmp_path / "x.npz").exists()
    zero = subprocess.run([*tool, "--source", "anny", "--markers", "0", "--out",
                           str(tmp_path / "y.npz")], capture_output=True, text=True, cwd=ROOT)
    assert zero.returncode == 2
    assert zero.stderr.strip().splitlines() == ["error: --markers must be at least 1, got 0"]
