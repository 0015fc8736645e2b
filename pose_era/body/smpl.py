"""SMPL model files (.pkl or .npz) -> the project's body-model format, without chumpy.

The official SMPL .pkl files are Python 2 pickles holding chumpy `Ch` objects (e.g. shapedirs)
and an old-scipy `csc_matrix` J_regressor; chumpy does not install under modern NumPy. The
unpickler below never imports either: chumpy's `Ch` becomes its stored array (`state["x"]`),
any scipy sparse matrix is rebuilt from its stored buffers. SMPL's frame (y up, facing +z,
left at +x) is already the project's, so no axis change is needed. SMPL's licence forbids
redistribution: users convert their own downloaded file. A pickle can run code while it loads,
so only the classes an SMPL file needs are resolved (pose_era/safe_pickle.py): a file naming
anything else is refused, and .npz files are read without pickle.

Keypoints (SMPL topology, 6890 vertices): COCO-17 from SMPL's joints plus the widely used
vertex ids of nose, eyes and ears (smplx `vertex_ids.py`); H36M-17 from a given
`J_regressor_h36m.npy` (SPIN's, the evaluation standard) or, without one, built like Anny's
(see keypoints.py) from SMPL joints and the nose / head-top vertices.
"""
import pickle
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse

from pose_era import safe_pickle
from pose_era.body import keypoints, markers

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand")
SMPL_NUM_VERTICES = 6890
SMPL_VERTEX_IDS = {"nose": 332, "left_eye": 2800, "right_eye": 6260, "left_ear": 583,
                   "right_ear": 4071, "head_top": 411}
_REQUIRED = ("v_template", "shapedirs", "J_regressor", "weights", "kintree_table", "f")


class _ChumpyArray:
    """Stands in for chumpy.ch.Ch while unpickling; keeps the pickled state."""

    def __setstate__(self, state):
        self.state = state


class _SparseState:
    """Stands in for an (old) scipy.sparse csc/csr/coo matrix class while unpickling."""

    kind = "csc"  # set per class by the unpickler

    def __setstate__(self, state):
        self.state = state


def _stand_in(module, name):
    """chumpy's Ch and scipy's sparse matrices -> inert placeholders; None for anything else."""
    if module.split(".")[0] == "chumpy":
        if name != "Ch":
            raise pickle.UnpicklingError(f"SMPL file holds a chumpy '{name}' expression, only "
                                         "plain Ch arrays can be read without chumpy")
        return _ChumpyArray
    if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix", "coo_matrix"):
        return type(name, (_SparseState,), {"kind": name[:3]})
    return None


def _plain(value):
    """Placeholders -> NumPy arrays (sparse matrices -> dense)."""
    if isinstance(value, _ChumpyArray):
        if not isinstance(value.state, dict) or "x" not in value.state:
            raise ValueError("a chumpy Ch object in the SMPL file has no stored array 'x'")
        return np.asarray(value.state["x"])
    if isinstance(value, _SparseState):
        s = value.state
        shape = s.get("_shape", s.get("shape"))
        if value.kind == "coo":
            m = scipy.sparse.coo_matrix((s["data"], (s["row"], s["col"])), shape=shape)
        else:
            cls = scipy.sparse.csc_matrix if value.kind == "csc" else scipy.sparse.csr_matrix
            m = cls((s["data"], s["indices"], s["indptr"]), shape=shape)
        return m.toarray()
    if scipy.sparse.issparse(value):
        return value.toarray()
    return value


def read_smpl(path):
    """The raw SMPL dict (arrays only) from a .pkl (no chumpy needed) or .npz file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SMPL model file {path} does not exist")
    if path.suffix == ".npz":
        try:
            raw = safe_pickle.load_npz(path, what=f"SMPL file {path}")
        except (pickle.UnpicklingError, zipfile.BadZipFile, OSError, EOFError) as err:
            raise ValueError(f"{path} is not a readable SMPL .npz ({err})") from None
        raw = {k: v.item() if v.dtype == object and v.shape == () else v for k, v in raw.items()}
    else:
        try:
            with open(path, "rb") as f:
                raw = safe_pickle.RestrictedUnpickler(f, substitute=_stand_in,
                                                      what=f"SMPL file {path}",
                                                      encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError,
                ValueError, IndexError) as err:
            raise ValueError(f"{path} is not a readable SMPL pickle ({err})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path} does not hold a dict of SMPL arrays")
    raw = {k: _plain(v) for k, v in raw.items()}
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ValueError(f"{path} is missing SMPL keys {', '.join(missing)}")
    return raw


def _parents(kintree):
    """kintree_table (2, J): row 0 parent ids (root: -1 or 2^32-1), row 1 joint ids."""
    kintree = np.asarray(kintree).astype(np.int64)
    col = {int(j): i for i, j in enumerate(kintree[1])}
    return np.array([-1] + [col[int(p)] for p in kintree[0, 1:]], np.int64)


def _smpl_keypoints(j_regressor, h36m_regressor):
    """(17, 6890) h36m17 and coco17 rows for SMPL topology."""
    n = j_regressor.shape[1]

    def vertex(name):
        w = np.zeros(n)
        w[SMPL_VERTEX_IDS[name]] = 1.0
        return w

    def joint(name):
        return j_regressor[SMPL_JOINT_NAMES.index(name)].astype(np.float64)

    limbs = {f"{s}_{k}": joint(f"{s}_{j}") for s in ("left", "right") for k, j in (
        ("shoulder", "shoulder"), ("elbow", "elbow"), ("wrist", "wrist"), ("hip", "hip"),
        ("knee", "knee"), ("ankle", "ankle"))}
    points = {**limbs, "pelvis": joint("pelvis"),
              "spine": 0.5 * (joint("pelvis") + joint("neck")), "thorax": joint("neck"),
              "jaw": 0.5 * (joint("head") + vertex("nose")),
              "head": vertex("head_top"), "nose": vertex("nose"),
              **{k: vertex(k) for k in ("left_eye", "right_eye", "left_ear", "right_ear")}}
    out = {"coco17": np.stack([points[k] for k in keypoints.COCO17_NAMES])}
    if h36m_regressor is not None:
        out["h36m17"] = np.asarray(h36m_regressor, np.float64)
    else:
        out["h36m17"] = np.stack([points[k] for k in keypoints.H36M17_NAMES])
    return {k: v.astype(np.float32) for k, v in out.items()}


def convert(path, num_markers=64, h36m_regressor=None):
    """An SMPL model file -> arrays of the project's body-model format (see format.py).

    `h36m_regressor`: optional path of a (17, 6890) .npy H36M joint regressor (SPIN's).
    """
    raw = read_smpl(path)
    v_template = np.asarray(raw["v_template"], np.float32)
    j_regressor = np.asarray(raw["J_regressor"], np.float32)
    parents = _parents(raw["kintree_table"])
    names = (SMPL_JOINT_NAMES if len(parents) == len(SMPL_JOINT_NAMES)
             else tuple(f"joint{j}" for j in range(len(parents))))
    faces = np.asarray(raw["f"], np.int64)
    arrays = {
        "v_template": v_template, "shapedirs": np.asarray(raw["shapedirs"], np.float32),
        "J_regressor": j_regressor, "weights": np.asarray(raw["weights"], np.float32),
        "parents": parents, "faces": faces, "joint_names": np.array(names),
        "source": np.array(f"SMPL model file {Path(path).name}"),
        "licence": np.array("SMPL model licence (non-commercial, do not redistribute)"),
        "units": np.array("metres"), "frame": np.array("y up, facing +z, body's left at +x"),
    }
    if "posedirs" in raw:
        arrays["posedirs"] = np.asarray(raw["posedirs"], np.float32)
    if names == SMPL_JOINT_NAMES:
        arrays["joint_flip"] = np.array([names.index(
            n.replace("left", "#").replace("right", "left").replace("#", "right"))
            for n in names], np.int64)
    mirror = raw.get("vert_sym_idxs")
    mesh = markers.SymmetricMesh(v_template, faces,
                                 mirror=None if mirror is None else np.asarray(mirror, np.int64))
    ids = markers.marker_vertices(mesh, num_markers)
    arrays.update(markers=ids, marker_flip=markers.flip_permutation(mesh, ids))
    if len(v_template) == SMPL_NUM_VERTICES and names == SMPL_JOINT_NAMES:
        regressor = None
        if h36m_regressor is not None:
            if not Path(h36m_regressor).is_file():
                raise FileNotFoundError(f"H36M regressor {h36m_regressor} does not exist")
            regressor = np.load(h36m_regressor)
            if regressor.shape != (17, SMPL_NUM_VERTICES):
                raise ValueError(f"the H36M regressor has shape {regressor.shape}, "
                                 f"expected (17, {SMPL_NUM_VERTICES})")
        arrays.update(_smpl_keypoints(j_regressor, regressor))
    elif h36m_regressor is not None:
        raise ValueError("--h36m-regressor needs an SMPL file with 6890 vertices and 24 joints")
    return arrays
