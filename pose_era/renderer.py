"""Headless mesh renderer: a z-buffered triangle rasteriser in vectorised NumPy.

Why: the field's demos break on pyrender's EGL/OSMesa set-up; this needs nothing but NumPy, so
the synthetic dataset and the demo render on any machine, and a model loads even where no
OpenGL exists.

Conventions (DESIGN.md): camera frame x right, y down, z forward, metres; full-perspective pinhole
camera with intrinsics K; pixel (row i, column j) covers [j, j+1) x [i, i+1) with its centre at
(j + 0.5, i + 0.5) — the origin is the top-left corner of the top-left pixel.

How: every triangle's screen bounding box is enumerated as candidate pixel centres (one flat
array for all triangles), barycentric coordinates come from per-triangle affine edge functions,
1/z is affine in screen space (perspective-correct depth), and the nearest fragment per pixel is
resolved with `np.minimum.at`. A pixel is covered when its centre lies inside the triangle (edges
inclusive). Triangles with a vertex at or behind the near plane are dropped (no clipping).
Shading is Lambert + ambient with flat or smooth (interpolated vertex) normals.
"""
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

NEAR = 1e-3  # metres; triangles with any vertex closer than this are not drawn


@dataclass
class Fragments:
    """The z-buffer of one render: which triangle is nearest at each pixel, and where on it.

    face (H,W) int32: triangle index or -1; depth (H,W) float32: camera-frame z (inf where
    empty); bary (H,W,3) float32: perspective-correct barycentric weights of the triangle's
    vertices (zeros where empty).
    """
    face: np.ndarray
    depth: np.ndarray
    bary: np.ndarray

    @property
    def mask(self):
        return self.face >= 0


@dataclass
class Render:
    """A shaded render: image (H,W,3) float32 in [0,1] RGB, mask (H,W) bool, depth (H,W)
    float32 (inf where empty), face (H,W) int32 (-1 where empty)."""
    image: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    face: np.ndarray


def _check_inputs(vertices, faces, K, height, width):
    vertices = np.asarray(vertices, np.float32)
    faces = np.asarray(faces)
    K = np.asarray(K, np.float32)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be an integer array of shape (F, 3), got {faces.dtype} "
                         f"{faces.shape}; triangulate quads first")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces index vertices 0..{len(vertices) - 1}, found "
                         f"{faces.min()}..{faces.max()}")
    if K.shape != (3, 3):
        raise ValueError(f"K must be a 3x3 intrinsics matrix, got shape {K.shape}")
    if int(height) <= 0 or int(width) <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    return vertices, faces.astype(np.int64), K


def _cross(a, b):
    """Row-wise cross product of (N,3) arrays (np.cross is several times slower)."""
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)


def _area_normals(vertices, faces):
    """(F,3) triangle normals of length twice the area (counter-clockwise = outward)."""
    v0 = vertices[faces[:, 0]]
    return _cross(vertices[faces[:, 1]] - v0, vertices[faces[:, 2]] - v0)


def face_normals(vertices, faces):
    """Unit normals (F,3) of triangles wound counter-clockwise seen from outside."""
    n = _area_normals(vertices, faces)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def vertex_normals(vertices, faces):
    """Unit vertex normals (V,3): area-weighted sum of the adjacent triangles' normals."""
    n = _area_normals(vertices, faces)
    idx = faces.reshape(-1)
    out = np.stack([np.bincount(idx, np.repeat(n[:, c], 3), minlength=len(vertices))
                    for c in range(3)], axis=1)
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(
        np.float32)


def rasterize(vertices, faces, K, height, width, cull_backfaces=True):
    """Z-buffer the triangles (camera frame) into Fragments of an height x width image.

    cull_backfaces drops triangles whose outward normal (counter-clockwise winding) faces away
    from the camera; use it for closed meshes, turn it off for open or inconsistently wound ones.
    """
    vertices, faces, K = _check_inputs(vertices, faces, K, height, width)
    H, W = int(height), int(width)
    face_buf = np.full(H * W, -1, np.int32)
    depth_buf = np.full(H * W, np.inf, np.float32)
    bary_buf = np.zeros((H * W, 3), np.float32)

    z = vertices[:, 2]
    zs = np.maximum(z, NEAR)
    uv = (vertices @ K.T)[:, :2] / zs[:, None]            # pixel coordinates (u, v)
    tri_ids = np.arange(len(faces))
    keep = (z[faces] > NEAR).all(axis=1)
    if cull_backfaces:                                     # normal points towards the camera
        keep &= np.einsum("ij,ij->i", _area_normals(vertices, faces), vertices[faces[:, 0]]) < 0
    tri_ids = tri_ids[keep]
    p = uv[faces[tri_ids]].astype(np.float64)             # (T,3,2)
    lo = np.ceil(p.min(axis=1) - 0.5)                      # first pixel index whose centre
    hi = np.floor(p.max(axis=1) - 0.5)                     # can be inside, and the last
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [W - 1, H - 1])
    cnt = np.maximum(hi - lo + 1, 0).astype(np.int64)      # (T,2) columns, rows
    # edge functions e_k(x, y) = a_k x + b_k y + c_k, normalised so e_0+e_1+e_2 = 1 inside
    x0, y0 = p[:, 0, 0], p[:, 0, 1]
    x1, y1 = p[:, 1, 0], p[:, 1, 1]
    x2, y2 = p[:, 2, 0], p[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    ok = (np.abs(area) > 1e-9) & (cnt[:, 0] > 0) & (cnt[:, 1] > 0)
    if not ok.any():
        return Fragments(face_buf.reshape(H, W), depth_buf.reshape(H, W),
                         bary_buf.reshape(H, W, 3))
    tri_ids, lo, cnt, area = tri_ids[ok], lo[ok], cnt[ok], area[ok]
    x0, y0, x1, y1, x2, y2 = (a[ok] for a in (x0, y0, x1, y1, x2, y2))
    # coefficients relative to the centre of each box's first pixel keep float32 exact enough
    ox, oy = lo[:, 0] + 0.5, lo[:, 1] + 0.5
    inv = 1.0 / area
    a0, b0 = (y1 - y2) * inv, (x2 - x1) * inv
    a1, b1 = (y2 - y0) * inv, (x0 - x2) * inv
    c0 = ((x1 - ox) * (y2 - oy) - (x2 - ox) * (y1 - oy)) * inv
    c1 = ((x2 - ox) * (y0 - oy) - (x0 - ox) * (y2 - oy)) * inv
    iz = 1.0 / z[faces[tri_ids]].astype(np.float64)       # (T,3) inverse depths
    coef = np.stack([a0, b0, c0, a1, b1, c1], axis=1).astype(np.float32)

    # enumerate every candidate pixel of every box in one flat array
    n_box = cnt[:, 0] * cnt[:, 1]
    total = int(n_box.sum())
    t = np.repeat(np.arange(len(tri_ids), dtype=np.int32), n_box)
    local = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n_box) - n_box, n_box)
    cols = cnt[t, 0]
    ly = (local // cols).astype(np.float32)
    lx = (local - (local // cols) * cols).astype(np.float32)
    c = coef[t]
    w0 = c[:, 0] * lx + c[:, 1] * ly + c[:, 2]
    w1 = c[:, 3] * lx + c[:, 4] * ly + c[:, 5]
    inside = (w0 >= 0) & (w1 >= 0) & (w0 + w1 <= 1)
    t, lx, ly, w0, w1 = t[inside], lx[inside], ly[inside], w0[inside], w1[inside]
    w2 = 1 - w0 - w1
    izt = iz[t].astype(np.float32)
    inv_depth = w0 * izt[:, 0] + w1 * izt[:, 1] + w2 * izt[:, 2]
    depth = 1.0 / inv_depth
    pix = (lo[t, 1].astype(np.int64) + ly.astype(np.int64)) * W + lo[t, 0].astype(np.int64) \
        + lx.astype(np.int64)

    np.minimum.at(depth_buf, pix, depth)
    win = np.flatnonzero(depth <= depth_buf[pix])
    frag_buf = np.full(H * W, -1, np.int64)
    frag_buf[pix[win]] = win                                # one winner per pixel (ties: any)
    px = np.flatnonzero(frag_buf >= 0)
    f = frag_buf[px]
    face_buf[px] = tri_ids[t[f]]
    # perspective-correct barycentrics: screen weights divided by depth, renormalised
    wb = np.stack([w0[f] * izt[f, 0], w1[f] * izt[f, 1], w2[f] * izt[f, 2]], axis=1)
    bary_buf[px] = wb / inv_depth[f, None]
    return Fragments(face_buf.reshape(H, W), depth_buf.reshape(H, W), bary_buf.reshape(H, W, 3))


def shade(vertices, faces, fragments, colors=None, light_dir=(0.3, -0.4, 1.0), ambient=0.35,
          diffuse=0.65, smooth=True, background=None, light_color=(1.0, 1.0, 1.0)):
    """Lambert + ambient shading of rasterised fragments -> Render.

    colors: None (light grey), (3,) one colour, (V,3) per-vertex or (F,3) per-face RGB in [0,1].
    light_dir: direction the light travels, camera frame (the default comes from behind the
    camera, slightly from above). background: None (black), (3,) colour or (H,W,3) image.
    """
    vertices = np.asarray(vertices, np.float32)
    faces = np.asarray(faces, np.int64)
    H, W = fragments.face.shape
    px = np.flatnonzero(fragments.face.reshape(-1) >= 0)
    f = fragments.face.reshape(-1)[px]
    bary = fragments.bary.reshape(-1, 3)[px]
    if smooth:
        vn = vertex_normals(vertices, faces)
        n = np.einsum("pk,pkc->pc", bary, vn[faces[f]])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    else:
        n = face_normals(vertices, faces)[f]
    to_light = -np.asarray(light_dir, np.float32)
    to_light /= np.linalg.norm(to_light)
    lambert = np.clip(n @ to_light, 0.0, None)[:, None]
    albedo = _albedo(colors, vertices, faces, f, bary)
    rgb = albedo * (ambient + diffuse * lambert * np.asarray(light_color, np.float32))

    image = np.zeros((H * W, 3), np.float32)
    if background is not None:
        bg = np.asarray(background, np.float32)
        image[:] = bg.reshape(-1, 3) if bg.ndim == 3 else bg
    image[px] = rgb
    return Render(np.clip(image, 0, 1).reshape(H, W, 3), fragments.mask, fragments.depth,
                  fragments.face)


def _albedo(colors, vertices, faces, f, bary):
    if colors is None:
        return np.full((len(f), 3), 0.75, np.float32)
    colors = np.asarray(colors, np.float32)
    if colors.shape == (3,):
        return np.broadcast_to(colors, (len(f), 3))
    if colors.shape == (len(vertices), 3):
        return np.einsum("pk,pkc->pc", bary, colors[faces[f]])
    if colors.shape == (len(faces), 3):
        return colors[f]
    raise ValueError(f"colors must be (3,), (V={len(vertices)},3) or (F={len(faces)},3), "
                     f"got {colors.shape}")


def render_mesh(vertices, faces, K, height, width, cull_backfaces=True, **shading):
    """Rasterise and shade in one call; shading keywords as in `shade`."""
    frags = rasterize(vertices, faces, K, height, width, cull_backfaces)
    return shade(vertices, faces, frags, **shading)


def overlay(image, render, alpha=0.8):
    """Alpha-blend a Render onto an (H,W,3) image in [0,1] where the mesh covers it."""
    image = np.asarray(image, np.float32)
    if image.shape != render.image.shape:
        raise ValueError(f"image {image.shape} and render {render.image.shape} differ in size")
    a = (alpha * render.mask.astype(np.float32))[..., None]
    return image * (1 - a) + render.image * a


def overlay_mesh(image, vertices, faces, K, alpha=0.8, cull_backfaces=True, **shading):
    """Render a camera-frame mesh with intrinsics K over an (H,W,3) image in [0,1] -> (H,W,3)."""
    image = np.asarray(image, np.float32)
    h, w = image.shape[:2]
    return overlay(image, render_mesh(vertices, faces, K, h, w, cull_backfaces, **shading), alpha)


def rotate_about_center(vertices, angle_deg, axis=(0.0, -1.0, 0.0), centre=None):
    """Vertices rotated by angle_deg about an axis through `centre` (default: their
    bounding-box centre).

    The default axis is the camera's up direction, so 90 degrees gives a side view rendered
    with the same camera (positive angles turn the right side, +x, away from the camera).
    """
    vertices = np.asarray(vertices, np.float32)
    axis = np.asarray(axis, np.float64)
    R = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.deg2rad(angle_deg)).as_matrix()
    if centre is None:
        centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    return ((vertices - centre) @ R.T.astype(np.float32) + centre).astype(np.float32)


def part_colors(weights, palette=None):
    """Per-vertex colours (V,3) by skinning-dominant joint: weights (V,J) -> palette[argmax].

    The default palette spaces hues by the golden angle so that neighbouring joints differ.
    """
    weights = np.asarray(weights)
    dominant = weights.argmax(axis=1)
    if palette is None:
        palette = joint_palette(weights.shape[1])
    return np.asarray(palette, np.float32)[dominant]


def joint_palette(num_joints):
    """num_joints distinct, light RGB colours (hues 0.618 turns apart)."""
    hue = (np.arange(num_joints) * 0.6180339887) % 1.0
    return _hsv_to_rgb(hue, 0.55, 0.95)


def _hsv_to_rgb(h, s, v):
    k = (np.asarray(h)[:, None] * 6 + np.array([5.0, 3.0, 1.0])) % 6
    return (v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)
