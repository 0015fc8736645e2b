"""The NumPy rasteriser against closed forms: coverage of pixel centres (matplotlib's point-in-
polygon test), depth and surface points by ray-plane intersection, occlusion order, shading and
overlay arithmetic."""
import numpy as np
import pytest
from matplotlib.path import Path as PolyPath
from scipy.spatial import ConvexHull

from pose_era import renderer as R

H, W = 40, 48
K = np.array([[60.0, 0, 23.7], [0, 55.0, 19.3], [0, 0, 1]], np.float32)


def _pixel_centres():
    jj, ii = np.meshgrid(np.arange(W), np.arange(H))
    return np.stack([jj + 0.5, ii + 0.5], -1).reshape(-1, 2)


def _project(points):
    p = points @ K.T.astype(np.float64)
    return p[:, :2] / p[:, 2:]


def _rays():
    """Direction (z = 1) of the ray through each pixel centre, (H*W, 3)."""
    uv1 = np.concatenate([_pixel_centres(), np.ones((H * W, 1))], 1)
    return uv1 @ np.linalg.inv(K.astype(np.float64)).T


def _inside_polygon(poly2d):
    path = PolyPath(poly2d)
    c = _pixel_centres()
    inside = path.contains_points(c)
    # keep the test away from the ambiguous case of a centre exactly on an edge
    edge = np.stack([poly2d, np.roll(poly2d, -1, 0)], 1)
    d = edge[:, 1] - edge[:, 0]
    rel = c[:, None] - edge[None, :, 0]
    s = np.clip((rel * d).sum(-1) / (d * d).sum(-1), 0, 1)
    dist = np.linalg.norm(rel - s[..., None] * d, axis=-1).min(1)
    assert dist.min() > 1e-3, "test geometry puts a pixel centre on an edge"
    return inside.reshape(H, W)


def _triangle(z=2.0):
    # counter-clockwise seen from the camera at the origin (normal towards -z)
    return np.array([[-0.5, -0.4, z], [0.1, 0.6, z + 0.7], [0.6, -0.3, z + 0.3]], np.float32)


def test_single_triangle_coverage_and_depth():
    v = _triangle()
    f = np.array([[0, 1, 2]])
    frags = R.rasterize(v, f, K, H, W)
    expect = _inside_polygon(_project(v.astype(np.float64)))
    assert expect.sum() > 100
    np.testing.assert_array_equal(frags.mask, expect)
    # depth: intersect each pixel's ray with the triangle's plane n.X = n.v0
    n = np.cross(v[1] - v[0], v[2] - v[0]).astype(np.float64)
    rays = _rays()
    z = (n @ v[0]) / (rays @ n)
    np.testing.assert_allclose(frags.depth[expect], z.reshape(H, W)[expect], rtol=1e-5)
    assert np.isinf(frags.depth[~expect]).all()
    # perspective-correct barycentrics reproduce the 3D surface point on the ray
    point = (frags.bary[expect][:, :, None] * v[None]).sum(1)
    np.testing.assert_allclose(point, (rays * z[:, None]).reshape(H, W, 3)[expect], atol=1e-5)


def test_backface_culling_follows_winding():
    v = _triangle()
    back = np.array([[0, 2, 1]])
    assert not R.rasterize(v, back, K, H, W).mask.any()
    assert R.rasterize(v, back, K, H, W, cull_backfaces=False).mask.sum() > 100


def test_occlusion_order_independent_of_face_order():
    near = _triangle(2.0)
    far = _triangle(3.0) * np.array([1.6, 1.6, 1.0], np.float32)   # bigger, behind
    v = np.concatenate([near, far])
    overlap = _inside_polygon(_project(near.astype(np.float64)))
    for f, near_id in (([[0, 1, 2], [3, 4, 5]], 0), ([[3, 4, 5], [0, 1, 2]], 1)):
        frags = R.rasterize(v, np.array(f), K, H, W)
        assert (frags.face[overlap] == near_id).all()
        only_far = frags.mask & ~overlap
        assert only_far.sum() > 50 and (frags.face[only_far] == 1 - near_id).all()


def test_cube_silhouette_and_front_depth():
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float64)
    hull = ConvexHull(corners)
    faces = []
    for simplex, eq in zip(hull.simplices, hull.equations):   # orient outward, counter-clockwise
        a, b, c = corners[simplex]
        faces.append(simplex if np.cross(b - a, c - a) @ eq[:3] > 0 else simplex[::-1])
    faces = np.array(faces)
    ang = np.deg2rad(25.0)
    rot = np.array([[np.cos(ang), 0, np.sin(ang)], [0, 1, 0], [-np.sin(ang), 0, np.cos(ang)]])
    v = (corners - 0.5) @ rot.T * 0.6 + [0.05, -0.03, 2.5]
    frags = R.rasterize(v.astype(np.float32), faces, K, H, W)
    uv = _project(v)
    expect = _inside_polygon(uv[ConvexHull(uv).vertices])
    np.testing.assert_array_equal(frags.mask, expect)
    # every covered pixel's depth is the nearest intersection with the cube (slab method)
    rays = _rays()[expect.reshape(-1)]
    local = rays @ rot / 0.6               # ray in cube coordinates; origin maps to o
    o = (np.zeros(3) - [0.05, -0.03, 2.5]) @ rot / 0.6 + 0.5
    with np.errstate(divide="ignore"):
        t0, t1 = (0 - o) / local, (1 - o) / local
    t_near = np.minimum(t0, t1).max(1)
    np.testing.assert_allclose(frags.depth[expect], t_near * rays[:, 2], rtol=1e-5)


def test_lambert_and_ambient():
    v = np.array([[-1, -1, 2], [-1, 1, 2], [1, -1, 2]], np.float32)   # faces the camera
    f = np.array([[0, 1, 2]])
    albedo = np.array([0.8, 0.5, 0.2], np.float32)
    for angle in (0.0, 60.0):
        light = (np.sin(np.deg2rad(angle)), 0.0, np.cos(np.deg2rad(angle)))
        r = R.render_mesh(v, f, K, H, W, colors=albedo, light_dir=light, ambient=0.2,
                          diffuse=0.7, smooth=False, background=(0.0, 0.0, 1.0))
        expect = albedo * (0.2 + 0.7 * np.cos(np.deg2rad(angle)))
        np.testing.assert_allclose(r.image[r.mask], np.broadcast_to(expect, (r.mask.sum(), 3)),
                                   atol=1e-6)
        np.testing.assert_array_equal(r.image[~r.mask], np.broadcast_to([0, 0, 1.0],
                                                                         ((~r.mask).sum(), 3)))


def test_vertex_colours_interpolate_and_smooth_normals_of_a_plane():
    v = _triangle()
    f = np.array([[0, 1, 2]])
    cols = np.eye(3, dtype=np.float32)
    r = R.render_mesh(v, f, K, H, W, colors=cols, ambient=1.0, diffuse=0.0)
    frags = R.rasterize(v, f, K, H, W)
    np.testing.assert_allclose(r.image[r.mask], frags.bary[r.mask], atol=1e-6)
    flat = R.render_mesh(v, f, K, H, W, smooth=False).image
    smooth = R.render_mesh(v, f, K, H, W, smooth=True).image
    np.testing.assert_allclose(flat, smooth, atol=1e-5)   # planar: vertex normal = face normal


def test_overlay_alpha():
    rng = np.random.default_rng(0)
    image = rng.random((H, W, 3)).astype(np.float32)
    r = R.render_mesh(_triangle(), np.array([[0, 1, 2]]), K, H, W, colors=(1.0, 0.0, 0.0))
    out = R.overlay(image, r, alpha=0.25)
    m = r.mask
    np.testing.assert_allclose(out[m], 0.75 * image[m] + 0.25 * r.image[m], atol=1e-6)
    np.testing.assert_array_equal(out[~m], image[~m])


def test_overlay_mesh_is_render_then_overlay():
    image = np.random.default_rng(1).random((H, W, 3)).astype(np.float32)
    v, f = _triangle(), np.array([[0, 1, 2]])
    np.testing.assert_array_equal(R.overlay_mesh(image, v, f, K, alpha=0.6, smooth=False),
                                  R.overlay(image, R.render_mesh(v, f, K, H, W, smooth=False),
                                            0.6))


def test_rotate_about_center_gives_side_view():
    v = np.array([[0, 0, 3], [1, 0, 3], [0, 1, 3.5], [1, 1, 3.5]], np.float32)
    centre = (v.min(0) + v.max(0)) / 2
    out = R.rotate_about_center(v, 90.0)
    np.testing.assert_allclose((out.min(0) + out.max(0)) / 2, centre, atol=1e-6)
    # axis = camera up (-y): +x (right) turns into +z (away from the camera), +z into -x
    np.testing.assert_allclose(out[1] - out[0], [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(out[2] - out[0], [-0.5, 1, 0], atol=1e-6)


def test_part_colors_follow_dominant_joint():
    w = np.array([[0.7, 0.3, 0], [0.1, 0.2, 0.7], [0.0, 0.6, 0.4]])
    pal = R.joint_palette(3)
    np.testing.assert_array_equal(R.part_colors(w), pal[[0, 2, 1]])
    assert len({tuple(c) for c in R.joint_palette(31)}) == 31


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="triangulate"):
        R.rasterize(np.zeros((4, 3)), np.array([[0, 1, 2, 3]]), K, H, W)
    with pytest.raises(ValueError, match="3x3"):
        R.rasterize(np.zeros((3, 3)), np.array([[0, 1, 2]]), np.eye(4), H, W)
