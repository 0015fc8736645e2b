"""Human3.6M in SPIN's npz + image-folder layout -> tf.data of schema examples.

Reads SPIN's `h36m_train.npz`, `h36m_valid_protocol1.npz`, `h36m_valid_protocol2.npz` (and any
npz in that layout, e.g. the synthetic test split `synth_test.npz`, through this same code):
  imgname (N,) image path relative to the image root (SPIN: 'images/S9_..._000001.jpg'),
  center (N,2) box centre in pixels, scale (N,) box side / 200 px,
  S (N,24,4) 3D joints in SPIN's J24 order, metres, 4th column = validity,
  part (N,24,3) 2D joints (J24) in pixels + visibility (training file),
and, when present, our extra keys: K (N,3,3) or (3,3) intrinsics of the image file, betas (or
SPIN's `shape`) (N,S_b), pose (N,J*3) or (N,J,3) axis-angle, transl (N,3).

Conventions: S goes to the H36M-17 slots of `j3d` as stored (SPIN's real files are
root-centred, so their j3d is pelvis-relative; compare after pelvis alignment, never project
it); `part` goes to the COCO-17 slots of `kp2d` (visibility 0 where the file has none, e.g.
the face joints of Human3.6M); has_j3d = 1 only when all 17 mapped joints are valid.
Intrinsics: the npz's K when given, else (intrinsics="auto") the published calibration of
the four Human3.6M cameras when the camera id is in imgname, else the default camera
(focal sqrt(W^2+H^2) of the full image, principal point at its centre).
"""
import logging
import os
import pickle
import re
import zipfile

import numpy as np

from data_pipelines import schema
from data_pipelines.source import FileSource
from pose_era import constants
from pose_era import safe_pickle

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("imgname", "center", "scale")
SPLIT_FILES = {"train": "h36m_train.npz",
               "test": {1: "h36m_valid_protocol1.npz", 2: "h36m_valid_protocol2.npz"}}
WHERE = ("SPIN's Human3.6M npz files (see github.com/nkolot/SPIN: fetch_data.sh / "
         "datasets/preprocess) with the extracted frames in an images/ folder beside them")

# Published calibration (focal fx, fy; principal point cx, cy; pixels) of the Human3.6M
# cameras, as distributed with the dataset's metadata and replicated in VideoPose3D.
H36M_CAMERAS = {
    "54138969": (1145.0494384765625, 1143.7811279296875, 512.54150390625, 515.4514770507812),
    "55011271": (1149.6756591796875, 1147.5916748046875, 508.8486328125, 508.0649108886719),
    "58860488": (1149.1407470703125, 1148.7989501953125, 519.8158569335938, 501.40264892578125),
    "60457274": (1145.5113525390625, 1144.77392578125, 514.9682006835938, 501.88201904296875),
}
_CAMERA_RE = re.compile(r"\.(\d{8})_")


def split_path(data_dir, split, protocol=2):
    """The npz of a split ('train' or 'test' with protocol 1/2) under `data_dir`; must exist."""
    name = SPLIT_FILES["train"] if split == "train" else SPLIT_FILES["test"][int(protocol)]
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"h36m: {path} not found; put {WHERE} in {data_dir}")
    return path


def load_npz(path):
    """All arrays of a SPIN-layout npz; clear errors for a missing file, keys or bad shapes."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found; put {WHERE} there")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable npz file; re-create or re-download it")
    try:  # object arrays (strings saved as Python objects) go through an allow-list unpickler
        arrays = safe_pickle.load_npz(path)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise ValueError(f"{path} is not a readable npz file ({err}); re-create or "
                         "re-download it") from None
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing keys {', '.join(missing)} (a SPIN-format npz needs "
                         f"{', '.join(REQUIRED_KEYS)}; found {', '.join(sorted(arrays))})")
    n = len(arrays["imgname"])
    if n == 0:
        raise ValueError(f"{path} holds no samples (its 'imgname' is empty); re-create it")
    expected = {"center": (n, 2), "scale": (n,), "part": (n, 24, 3), "transl": (n, 3)}
    for key, shape in expected.items():
        if key in arrays and arrays[key].shape != shape:
            raise ValueError(f"{path}: '{key}' has shape {arrays[key].shape}, expected {shape}")
    if "S" in arrays and arrays["S"].shape not in ((n, 24, 4), (n, 24, 3)):
        raise ValueError(f"{path}: 'S' has shape {arrays['S'].shape}, expected ({n}, 24, 4)")
    if "K" in arrays and arrays["K"].shape not in ((n, 3, 3), (3, 3)):
        raise ValueError(f"{path}: 'K' has shape {arrays['K'].shape}, expected ({n}, 3, 3)")
    return arrays


def labels(arrays, sizes, intrinsics="auto", what="h36m"):
    """Npz arrays -> FileSource label arrays (see data_pipelines.source)."""
    if intrinsics not in ("auto", "default"):
        raise ValueError(f"intrinsics must be 'auto' or 'default', got {intrinsics!r}")
    names = arrays["imgname"]
    names = np.char.decode(names) if names.dtype.kind == "S" else names.astype(str)
    n = len(names)
    out = {"imgname": names, "center": arrays["center"].astype(np.float32),
           "scale": arrays["scale"].astype(np.float32)}
    out["K"], out["K_given"] = _intrinsics(arrays, names, intrinsics)
    if "S" in arrays:
        s = arrays["S"].astype(np.float32)
        valid = s[..., 3] > 0 if s.shape[-1] == 4 else np.ones(s.shape[:2], bool)
        idx = list(constants.J24_TO_H36M17)
        out["has_j3d"] = valid[:, idx].all(axis=1).astype(np.float32)
        out["j3d"] = s[:, idx, :3] * out["has_j3d"][:, None, None]
    if "part" in arrays:
        out["kp2d"] = arrays["part"][:, list(constants.J24_TO_COCO17)].astype(np.float32)
        out["kp2d"][..., 2] = (out["kp2d"][..., 2] > 0).astype(np.float32)
    out.update(_params(arrays, n, sizes, what))
    return out


def _intrinsics(arrays, names, mode):
    n = len(names)
    K = np.zeros((n, 3, 3), np.float32)
    given = np.zeros(n, np.float32)
    if "K" in arrays:
        K[:] = arrays["K"].astype(np.float32)
        given[:] = 1.0
    elif mode == "auto":
        for i, name in enumerate(names):
            match = _CAMERA_RE.search(os.path.basename(name))
            if match and match.group(1) in H36M_CAMERAS:
                fx, fy, cx, cy = H36M_CAMERAS[match.group(1)]
                K[i] = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
                given[i] = 1.0
    return K, given


def _params(arrays, n, sizes, what):
    """Body-model parameters when the file has all three and they fit the body model."""
    betas = arrays.get("betas", arrays.get("shape"))
    if betas is None and "pose" not in arrays and "transl" not in arrays:
        return {}
    pose = arrays.get("pose")
    usable = (betas is not None and pose is not None and "transl" in arrays
              and betas.shape == (n, sizes.num_betas) and pose.size == n * sizes.num_joints * 3)
    if not usable:
        log.warning("%s: body-model parameters in the file do not fit the body model "
                    "(betas %s, pose %s, transl %s; expected (%d, %d), (%d, %d, 3), (%d, 3)): "
                    "has_params = 0", what, getattr(betas, "shape", None),
                    getattr(pose, "shape", None), getattr(arrays.get("transl"), "shape", None),
                    n, sizes.num_betas, n, sizes.num_joints, n)
        return {}
    return {"betas": betas.astype(np.float32),
            "pose": pose.reshape(n, sizes.num_joints, 3).astype(np.float32),
            "transl": arrays["transl"].astype(np.float32),
            "has_params": np.ones(n, np.float32)}


def source(npz_path, image_root=None, image_size=480, sizes=schema.LabelSizes(),
           intrinsics="auto", name=None):
    """A FileSource over a SPIN-layout npz; images relative to `image_root` (default: the
    npz's folder, SPIN's layout)."""
    name = name or os.path.splitext(os.path.basename(npz_path))[0]
    arrays = load_npz(npz_path)
    root = image_root if image_root is not None else os.path.dirname(os.path.abspath(npz_path))
    return FileSource(name, root, labels(arrays, sizes, intrinsics, name), image_size, sizes)
