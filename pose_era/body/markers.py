"""Surface markers: a deterministic, left/right-symmetric set of vertices spread over the body.

THUNDR regresses 3D surface markers (VirtualMarker uses 64); a marker here is one mesh vertex of
the body's outer surface (eyeballs and tongue excluded). Farthest-point sampling over the
left half (midline included) of the mean body spreads them out; every off-midline pick brings
its mirror vertex along, so the set is exactly symmetric and `flip_permutation` swaps sides.
"""
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

_MIRROR_TOL = 1e-4  # metres: a vertex counts as mirrored when its mirror image is this close


class SymmetricMesh:
    """A rest mesh (y up, left at +x) with its vertex mirror map and outer-surface mask."""

    def __init__(self, vertices, faces, mirror=None):
        """`mirror` (V,) vertex ids of each vertex's mirror image, else found by proximity."""
        self.vertices = np.asarray(vertices, np.float64)
        self.faces = np.asarray(faces, np.int64)
        if mirror is None:
            mirrored = self.vertices * np.array([-1.0, 1.0, 1.0])
            dist, self.mirror = cKDTree(self.vertices).query(mirrored)
            self.symmetric = bool(dist.max() < _MIRROR_TOL)
        else:
            self.mirror = np.asarray(mirror, np.int64)
            self.symmetric = bool(np.array_equal(self.mirror[self.mirror],
                                                 np.arange(len(self.vertices))))
        n = len(self.vertices)
        f = self.faces
        adj = sp.coo_matrix((np.ones(f.size), (f.ravel(), np.roll(f, 1, axis=1).ravel())), (n, n))
        _, label = connected_components(adj, directed=False)
        used = np.bincount(f.ravel(), minlength=n) > 0
        # The body is the largest connected piece; eyeballs and tongue are separate pieces.
        self.components = label
        self.body = (label == np.argmax(np.bincount(label[used]))) & used


def marker_vertices(mesh, count):
    """`count` vertex ids, symmetric and spread by farthest-point sampling (deterministic)."""
    if not mesh.symmetric:
        raise ValueError("marker placement needs a left/right symmetric mesh")
    if count < 1:
        raise ValueError(f"the number of markers must be at least 1, got {count}")
    v = mesh.vertices
    centre = mesh.mirror == np.arange(len(v))
    # The left half: vertices whose mirror is not to their left (midline included).
    cand = np.flatnonzero(mesh.body & (v[:, 0] >= v[mesh.mirror, 0]))
    on_mid = centre[cand]
    if count % 2 and not on_mid.any():
        raise ValueError(f"{count} markers need a midline vertex, the mesh has none; "
                         "use an even number")
    # A pair's two markers are 2|x| apart: count that as a distance too, so that no pair
    # straddles the midline.
    dist = np.where(on_mid, np.inf, np.linalg.norm(v[cand] - v[mesh.mirror[cand]], axis=1))
    chosen = []
    while len(chosen) < count:
        # Start at the top of the head; when one slot is left only a midline vertex fits.
        score = v[cand, 1] if not chosen else dist
        score = np.where(on_mid | (count - len(chosen) >= 2), score, -np.inf)
        pick = int(cand[np.argmax(score)])
        pair = [pick] if centre[pick] else [pick, int(mesh.mirror[pick])]
        chosen.extend(pair)
        for p in pair:
            dist = np.minimum(dist, np.linalg.norm(v[cand] - v[p], axis=1))
    return np.array(chosen, np.int64)


def flip_permutation(mesh, vertex_ids):
    """Index permutation mapping each marker to its mirror marker."""
    where = {int(vid): i for i, vid in enumerate(vertex_ids)}
    return np.array([where[int(mesh.mirror[vid])] for vid in vertex_ids], np.int64)
