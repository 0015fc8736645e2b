"""Rotations, the pinhole camera and Procrustes alignment: the project's one copy of this math.

Everything is batched TensorFlow over leading axes and differentiable. Conventions (DESIGN.md):
camera frame x right, y down, z forward, metres; pixels u right, v down with the origin at the
top-left corner of the top-left pixel (so pixel (i, j) has its centre at (i + 0.5, j + 0.5)).

The 6D rotation representation (Zhou et al., CVPR 2019) is the first two COLUMNS of the matrix,
stored as [R[:, 0], R[:, 1]] (6 numbers: column 0 then column 1); `rot6d_to_matrix` turns any 6
numbers into a rotation by Gram-Schmidt, so it is defined everywhere a network can output.
"""
import tensorflow as tf

_EPS = 1e-8


def _safe_norm(x, axis=-1, keepdims=False):
    """Euclidean norm with a finite gradient at zero."""
    sq = tf.reduce_sum(tf.square(x), axis=axis, keepdims=keepdims)
    return tf.sqrt(tf.maximum(sq, _EPS * _EPS))


def rot6d_to_matrix(x):
    """(..., 6) -> (..., 3, 3): Gram-Schmidt on the two column vectors (Zhou et al.)."""
    x = tf.convert_to_tensor(x)
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = a1 / _safe_norm(a1, keepdims=True)
    a2 = a2 - tf.reduce_sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / _safe_norm(a2, keepdims=True)
    b3 = tf.linalg.cross(b1, b2)
    return tf.stack([b1, b2, b3], axis=-1)


def matrix_to_rot6d(r):
    """(..., 3, 3) -> (..., 6): the first two columns, column 0 first."""
    r = tf.convert_to_tensor(r)
    return tf.concat([r[..., :, 0], r[..., :, 1]], axis=-1)


def axis_angle_to_matrix(aa):
    """(..., 3) axis * angle (radians) -> (..., 3, 3) by Rodrigues' formula.

    sin(t)/t and (1 - cos(t))/t^2 switch to their Taylor series near t = 0, so the value and the
    gradient stay exact and finite at the identity.
    """
    aa = tf.convert_to_tensor(aa)
    t2 = tf.reduce_sum(tf.square(aa), axis=-1)[..., None, None]
    small = t2 < 1e-6
    t2_safe = tf.where(small, tf.ones_like(t2), t2)
    t = tf.sqrt(t2_safe)
    a = tf.where(small, 1.0 - t2 / 6.0 + t2 * t2 / 120.0, tf.sin(t) / t)
    b = tf.where(small, 0.5 - t2 / 24.0 + t2 * t2 / 720.0, (1.0 - tf.cos(t)) / t2_safe)
    x, y, z = aa[..., 0], aa[..., 1], aa[..., 2]
    zero = tf.zeros_like(x)
    k = tf.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1)
    k = tf.reshape(k, tf.concat([tf.shape(aa)[:-1], [3, 3]], axis=0))
    eye = tf.eye(3, dtype=aa.dtype)
    return eye + a * k + b * tf.matmul(k, k)


def matrix_to_quaternion(r):
    """(..., 3, 3) -> (..., 4) unit quaternion (w, x, y, z) with w >= 0 (Shepperd's method).

    Each of the four candidate formulas is exact where its divisor is largest; picking that one
    keeps the result accurate for every angle, including 180 degrees.
    """
    r = tf.convert_to_tensor(r)
    m00, m01, m02 = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    m10, m11, m12 = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    m20, m21, m22 = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    cands_sq = tf.stack([1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22,
                         1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22], axis=-1)
    s = 2.0 * tf.sqrt(tf.maximum(cands_sq, 1e-12))  # 4 * |component|
    q_w = tf.stack([s[..., 0] / 4, (m21 - m12) / s[..., 0], (m02 - m20) / s[..., 0],
                    (m10 - m01) / s[..., 0]], axis=-1)
    q_x = tf.stack([(m21 - m12) / s[..., 1], s[..., 1] / 4, (m01 + m10) / s[..., 1],
                    (m02 + m20) / s[..., 1]], axis=-1)
    q_y = tf.stack([(m02 - m20) / s[..., 2], (m01 + m10) / s[..., 2], s[..., 2] / 4,
                    (m12 + m21) / s[..., 2]], axis=-1)
    q_z = tf.stack([(m10 - m01) / s[..., 3], (m02 + m20) / s[..., 3], (m12 + m21) / s[..., 3],
                    s[..., 3] / 4], axis=-1)
    cands = tf.stack([q_w, q_x, q_y, q_z], axis=-2)
    best = tf.one_hot(tf.argmax(cands_sq, axis=-1), 4, dtype=r.dtype)
    q = tf.reduce_sum(cands * best[..., None], axis=-2)
    q = q * tf.where(q[..., :1] < 0, -tf.ones_like(q[..., :1]), tf.ones_like(q[..., :1]))
    return q / tf.norm(q, axis=-1, keepdims=True)


def matrix_to_axis_angle(r):
    """(..., 3, 3) -> (..., 3) axis * angle with angle in [0, pi], via the quaternion."""
    q = matrix_to_quaternion(r)
    w, v = q[..., :1], q[..., 1:]
    sin_half = _safe_norm(v, keepdims=True)
    angle = 2.0 * tf.atan2(sin_half, w)
    # angle / sin(angle/2) -> 2 / w as the angle -> 0 (w -> 1).
    small = sin_half < 1e-6
    factor = tf.where(small, 2.0 / tf.maximum(w, 1e-6), angle / sin_half)
    return v * factor


def project(points, K):
    """Full-perspective projection: points (..., N, 3) camera frame, K (..., 3, 3) -> (..., N, 2).

    Points at or behind the camera (z <= 1e-6 m) are divided by 1e-6 instead of z, so the result
    stays finite; callers mask such points by their depth.
    """
    points = tf.convert_to_tensor(points)
    K = tf.cast(tf.convert_to_tensor(K), points.dtype)
    p = tf.einsum("...ij,...nj->...ni", K, points)
    z = tf.maximum(p[..., 2:3], 1e-6)
    return p[..., :2] / z


def default_focal(width, height):
    """Focal length (pixels) of an unknown camera: sqrt(W^2 + H^2) of the full image (CLIFF)."""
    width = tf.cast(width, tf.float32)
    height = tf.cast(height, tf.float32)
    return tf.sqrt(width * width + height * height)


def intrinsics(focal, width, height):
    """(...,) focal and image size -> (..., 3, 3) K with the principal point at the image centre."""
    focal = tf.convert_to_tensor(focal, tf.float32)
    cx = tf.broadcast_to(tf.cast(width, tf.float32) / 2.0, tf.shape(focal))
    cy = tf.broadcast_to(tf.cast(height, tf.float32) / 2.0, tf.shape(focal))
    zero, one = tf.zeros_like(focal), tf.ones_like(focal)
    k = tf.stack([focal, zero, cx, zero, focal, cy, zero, zero, one], axis=-1)
    return tf.reshape(k, tf.concat([tf.shape(focal), [3, 3]], axis=0))


def _crop_affine(box, out_size, dtype):
    """The 3x3 map from full-image pixels to crop pixels for box (..., 4) = [x0, y0, x1, y1]."""
    box = tf.cast(tf.convert_to_tensor(box), dtype)
    out = tf.cast(tf.broadcast_to(tf.convert_to_tensor(out_size), [2]), dtype)
    sx = out[0] / (box[..., 2] - box[..., 0])
    sy = out[1] / (box[..., 3] - box[..., 1])
    zero, one = tf.zeros_like(sx), tf.ones_like(sx)
    a = tf.stack([sx, zero, -box[..., 0] * sx, zero, sy, -box[..., 1] * sy, zero, zero, one],
                 axis=-1)
    return tf.reshape(a, tf.concat([tf.shape(sx), [3, 3]], axis=0))


def crop_intrinsics(K, box, out_size):
    """Intrinsics of a crop: K (..., 3, 3) of the full image, box (..., 4) = [x0, y0, x1, y1]
    in full-image pixels (corner convention), the crop resized to out_size = (W, H) or S pixels.

    Projection with the result gives crop pixels (THUNDR's full-perspective crop camera); the
    box need not be square (then pixels are not square either).
    """
    K = tf.convert_to_tensor(K)
    return tf.matmul(_crop_affine(box, out_size, K.dtype), K)


def uncrop_intrinsics(K_crop, box, out_size):
    """Inverse of `crop_intrinsics`: crop intrinsics back to the full image's."""
    K_crop = tf.convert_to_tensor(K_crop)
    return tf.matmul(tf.linalg.inv(_crop_affine(box, out_size, K_crop.dtype)), K_crop)


def best_rotation(source, target):
    """Centred (..., N, 3) source and target -> (R (..., 3, 3), K = S^T T (..., 3, 3)): the
    rotation minimising sum_n |R s_n - t_n|^2 (Kabsch / orthogonal Procrustes by SVD), never a
    reflection. Finite for degenerate points (all equal, collinear, planar): the SVD of a
    rank-deficient K still has orthonormal factors, and R is one of the optimal rotations. Its
    gradient is unbounded where two singular values (nearly) coincide: differentiate through
    it only where that cannot happen, or stop the gradient (models/markerposer.py)."""
    k = tf.matmul(source, target, transpose_a=True)  # (..., 3, 3) = X1 X2^T in SPIN's 3xN notation
    _, u, v = tf.linalg.svd(k)  # k = u diag(s) v^T
    det = tf.linalg.det(tf.matmul(u, v, transpose_b=True))
    sign = tf.where(det < 0, -tf.ones_like(det), tf.ones_like(det))
    z = tf.linalg.diag(tf.stack([tf.ones_like(det), tf.ones_like(det), sign], axis=-1))
    return tf.matmul(v, tf.matmul(z, u, transpose_b=True)), k  # R = V Z U^T


def procrustes_align(pred, gt):
    """Similarity-align pred (..., N, 3) to gt (..., N, 3) per sample; returns aligned pred.

    The formula shared by SPIN, VIBE, BEDLAM and HMR2.0: centre both; K = X1^T X2 (3x3);
    U, s, V = svd(K); Z = diag(1, 1, sign(det(U V^T))) so the result is never a reflection;
    R = V Z U^T; scale = trace(R K) / sum |X1|^2; t = mu2 - scale R mu1. Works in the input's
    dtype (pass float64 for evaluation-grade numbers).
    """
    pred = tf.convert_to_tensor(pred)
    gt = tf.cast(tf.convert_to_tensor(gt), pred.dtype)
    mu1 = tf.reduce_mean(pred, axis=-2, keepdims=True)
    mu2 = tf.reduce_mean(gt, axis=-2, keepdims=True)
    x1, x2 = pred - mu1, gt - mu2
    var1 = tf.reduce_sum(tf.square(x1), axis=[-2, -1])
    r, k = best_rotation(x1, x2)
    scale = tf.linalg.trace(tf.matmul(r, k)) / var1
    # Points are rows here, so R x becomes x R^T.
    aligned = scale[..., None, None] * tf.matmul(x1, r, transpose_b=True)
    return aligned + mu2
