"""Training losses of the THUNDR-style pose network, per example, masked by the has_* flags.

Every term is a per-example (B,) float32 tensor, zero at the ground truth and positive away from it:
- markers3d:   mean over markers of the Euclidean distance (metres) between predicted and true
               markers after centring each set on its centroid (pose, shape and orientation),
               averaged over all L refinement steps (deep supervision) or the last only;
               masked by has_markers.
- marker_centroid: the distance between the predicted and true marker centroids (placement in
               the camera frame). Split from markers3d because the depth of a crop is uncertain
               by decimetres to metres: in one absolute distance its error swamps the gradient
               of the body's shape, and short runs then learn placement while distorting the
               marker cloud (PA-MPJPE worse than the mean pose).
- marker_distances: mean absolute difference between the predicted and the true matrices of
               marker-to-marker distances (metres; all L estimates under deep supervision);
               masked by has_markers. Invariant to the body's rotation and placement: it
               rewards the right articulation and shape before the orientation is right (which
               a from-scratch backbone learns last when people face any direction).
- markers2d:   the markers projected through the crop's K against the true markers projected the
               same way, the robust 2D error of reproj (all L estimates under deep supervision);
               masked by has_markers. Why: the image-plane position of every marker is what the
               pixels determine best; a centred 3D distance mixes it with the depth ordering of
               the limbs, which one view leaves ambiguous, and learns far more slowly.
- marker_mesh: the same distance between the final predicted markers and the markers of the mesh
               posed from the MarkerPoser's parameters (self-consistency; always on).
- joints3d:    mean joint distance of the H36M-17 joints after subtracting each set's pelvis
               (joint 0); masked by has_j3d.
- vertices:    mean vertex distance, pelvis-aligned, against the mesh of the true body parameters
               (the example schema carries parameters, not vertices); masked by has_params.
- dense2d:     the training aid's soft-argmax COCO-17 keypoints (model.dense2d) against kp2d, the
               same robust 2D error as reproj; only when the model has that output.
- dense2d_heatmap: the training aid's heatmaps (spatial softmax of kp2d_logits) against a
               Gaussian of `heatmap_sigma` pixels at each visible kp2d inside the crop: the KL
               divergence KL(target || heatmap), averaged over those keypoints. Why: the
               soft-argmax error above gives each image one gradient direction per keypoint,
               which a from-scratch backbone learns from slowly; a heatmap target tells every
               cell of the map what it should say.
- marker_heatmap: with model.dense2d.markers, the aid's heatmaps of all K markers against
               Gaussians at the true markers projected through K (in-crop ones; hidden markers
               too: their place is defined, and it is denser 2D evidence than COCO-17).
- marker_locations: the aid's per-marker location maps (x, y, z relative to the marker
               centroid, metres, in every cell) against the true centred markers, weighted by
               the same Gaussians (VNect's location maps): a dense 3D target for the backbone,
               which otherwise learns depth only through the head's pooled tokens.
- reproj:      the COCO-17 keypoints of the posed mesh projected through the crop's K, residual
               divided by the image size, robust pseudo-Huber sqrt(r^2 + eps^2) - eps per keypoint,
               weighted by the visibility and averaged over the visible keypoints (weak supervision).
- shape_prior: mean squared deviation of the betas from the body model's mean betas.
- pose_prior:  mean over the non-root joints of ||R_j - I||_F^2 (= 4 (1 - cos angle)): a pull of
               the local joint rotations towards the rest pose; the root orientation is free. (A
               joint-limit penalty would need per-joint limits the body-model file does not carry.)
Distances use a norm whose gradient is 0 (not NaN) at exactly zero residual.
The driver's loss is sum_t weight_t * term_t per example; it averages over the global batch.
"""
import tensorflow as tf

from pose_era import geometry

TERMS = ("markers3d", "marker_centroid", "marker_distances", "markers2d", "marker_mesh", "joints3d",
         "vertices", "reproj", "dense2d", "dense2d_heatmap", "marker_heatmap", "marker_locations",
         "shape_prior", "pose_prior")


def safe_norm(x, axis=-1):
    """Euclidean norm with gradient 0 at x = 0 (plain sqrt gives NaN there)."""
    sq = tf.reduce_sum(tf.square(x), axis=axis)
    nonzero = sq > 0
    return tf.where(nonzero, tf.sqrt(tf.where(nonzero, sq, tf.ones_like(sq))), tf.zeros_like(sq))


def mean_distance(pred, true):
    """(B,...,N,3) x2 -> (B,...) mean point distance."""
    return tf.reduce_mean(safe_norm(pred - true), axis=-1)


def centred(points):
    """(..., N, 3) points minus their centroid."""
    return points - tf.reduce_mean(points, axis=-2, keepdims=True)


def pairwise_distances(points):
    """(..., N, 3) -> (..., N, N) Euclidean distances (gradient 0, not NaN, on the diagonal)."""
    return safe_norm(points[..., :, None, :] - points[..., None, :, :])


def root_relative(points, root_index=0):
    return points - points[..., root_index:root_index + 1, :]


def reprojection(points, K, kp2d, image_size, eps):
    """(B,) robust 2D error of (B,N,3) camera-frame points against (B,N,3) pixels + visibility.

    Depth is clamped to >= 1 cm before projecting so that points behind the camera give a large,
    finite residual instead of a sign flip or a division by zero.
    """
    return keypoint_error_2d(in_front_projection(points, K), kp2d[..., :2], kp2d[..., 2],
                             image_size, eps)


def in_front_projection(points, K):
    """(...,N,3) camera-frame points -> (...,N,2) pixels, depth clamped to >= 1 cm first."""
    z = tf.maximum(points[..., 2:], 0.01)
    return geometry.project(tf.concat([points[..., :2], z], axis=-1), K)


def keypoint_error_2d(uv, uv_true, vis, image_size, eps):
    """(...,) robust mean 2D error of (...,N,2) pixels against (...,N,2) with weights (...,N).

    Residuals are divided by the image size; pseudo-Huber sqrt(r^2 + eps^2) - eps per point.
    """
    r = (uv - uv_true) / float(image_size)
    rho = tf.sqrt(tf.reduce_sum(tf.square(r), -1) + eps ** 2) - eps
    return tf.reduce_sum(vis * rho, -1) / tf.maximum(tf.reduce_sum(vis, -1), 1.0)


def gaussian_targets(grid, kp2d, image_size, sigma):
    """((B,H,W,N) log of the normalised Gaussian of `sigma` px at each point, (B,N) weights).

    grid (H, W) cells `image_size / W` pixels wide (centres at (j + 0.5) x stride, as
    SoftArgmax2D); kp2d (B,N,3) pixels and visibility. A point's weight is its visibility if it
    lies inside the crop, else 0.
    """
    h, w = grid
    stride = float(image_size) / w
    u = (tf.range(w, dtype=tf.float32) + 0.5) * stride
    v = (tf.range(h, dtype=tf.float32) + 0.5) * stride
    du = tf.square(u[None, None, :, None] - kp2d[:, None, None, :, 0])      # (B,1,W,N)
    dv = tf.square(v[None, :, None, None] - kp2d[:, None, None, :, 1])      # (B,H,1,N)
    log_target = -(du + dv) / (2.0 * sigma ** 2)                              # (B,H,W,N)
    log_target -= tf.reduce_logsumexp(log_target, axis=[1, 2], keepdims=True)
    inside = tf.logical_and(tf.reduce_all(kp2d[..., :2] >= 0.0, -1),
                            tf.reduce_all(kp2d[..., :2] < float(image_size), -1))
    return log_target, kp2d[..., 2] * tf.cast(inside, tf.float32)


def _weighted_mean(values, weight):
    return tf.reduce_sum(weight * values, -1) / tf.maximum(tf.reduce_sum(weight, -1), 1.0)


def heatmap_divergence(logits, kp2d, image_size, sigma):
    """(B,) mean KL(Gaussian target || softmax heatmap) over the visible in-crop keypoints.

    logits (B,H,W,N); kp2d (B,N,3) pixels and visibility; sigma in pixels (gaussian_targets).
    """
    log_target, weight = gaussian_targets(logits.shape[1:3], kp2d, image_size, sigma)
    log_prob = logits - tf.reduce_logsumexp(logits, axis=[1, 2], keepdims=True)
    kl = tf.reduce_sum(tf.exp(log_target) * (log_target - log_prob), axis=[1, 2])  # (B,N)
    return _weighted_mean(kl, weight)


def location_map_error(locations, kp2d, points, image_size, sigma):
    """(B,) mean over the in-crop points of the Gaussian-weighted distance of the location maps
    from each point's 3D position (VNect's location maps, read around the point's pixel).

    locations (B,H,W,N,3) metres; kp2d (B,N,3) the points' pixels and weights; points (B,N,3).
    """
    log_target, weight = gaussian_targets(locations.shape[1:3], kp2d, image_size, sigma)
    d = safe_norm(locations - points[:, None, None])                          # (B,H,W,N)
    return _weighted_mean(tf.reduce_sum(tf.exp(log_target) * d, axis=[1, 2]), weight)


def pose_prior(rotmats):
    """(B,J,3,3) -> (B,) mean ||R_j - I||_F^2 over the non-root joints."""
    eye = tf.eye(3, dtype=rotmats.dtype)
    return tf.reduce_mean(tf.reduce_sum(tf.square(rotmats[:, 1:] - eye), axis=[-2, -1]), -1)


def loss_terms(outputs, targets, K, image_size, body_model, loss_config):
    """dict term -> (per-example value (B,), per-example mask (B,)) for terms with weight > 0."""
    f32 = lambda x: tf.cast(x, tf.float32)  # noqa: E731
    batch = tf.shape(outputs["markers"])[0]
    ones = tf.ones([batch], tf.float32)
    terms = {}
    has_kp2d = tf.cast(tf.reduce_any(targets["kp2d"][..., 2] > 0, -1), tf.float32)
    est = f32(outputs["markers_list"] if loss_config.deep_supervision else outputs["markers"][:, None])
    true = f32(targets["markers"])[:, None]
    if loss_config.markers3d:
        d = mean_distance(centred(est), centred(true))
        terms["markers3d"] = (tf.reduce_mean(d, axis=1), f32(targets["has_markers"]))
    if loss_config.marker_centroid:
        d = safe_norm(tf.reduce_mean(est, axis=-2) - tf.reduce_mean(true, axis=-2))
        terms["marker_centroid"] = (tf.reduce_mean(d, axis=1), f32(targets["has_markers"]))
    if loss_config.marker_distances:
        d = tf.reduce_mean(tf.abs(pairwise_distances(est) - pairwise_distances(true)), [-2, -1])
        terms["marker_distances"] = (tf.reduce_mean(d, axis=1), f32(targets["has_markers"]))
    if loss_config.markers2d:
        Kl = f32(K)[:, None]
        d = keypoint_error_2d(in_front_projection(est, Kl), in_front_projection(true, Kl),
                              tf.ones_like(true[..., 0]), image_size, loss_config.reproj_eps)
        terms["markers2d"] = (tf.reduce_mean(d, axis=1), f32(targets["has_markers"]))
    if loss_config.marker_mesh:
        terms["marker_mesh"] = (mean_distance(f32(outputs["markers"]),
                                              f32(outputs["mesh_markers"])), ones)
    if loss_config.joints3d:
        terms["joints3d"] = (mean_distance(root_relative(f32(outputs["h36m17"])),
                                           root_relative(f32(targets["j3d"]))),
                             f32(targets["has_j3d"]))
    if loss_config.vertices:
        has = f32(targets["has_params"])
        true = body_model.from_labels(targets["betas"], targets["pose"], targets["transl"])
        pred_v = f32(outputs["vertices"]) - f32(outputs["h36m17"])[:, :1]
        true_v = true["vertices"] - true["h36m17"][:, :1]
        terms["vertices"] = (mean_distance(pred_v, true_v), has)
    if loss_config.reproj:
        terms["reproj"] = (reprojection(f32(outputs["coco17"]), f32(K), f32(targets["kp2d"]),
                                        image_size, loss_config.reproj_eps),
                           has_kp2d)
    if loss_config.dense2d and "kp2d_dense" in outputs:
        kp2d = f32(targets["kp2d"])
        terms["dense2d"] = (keypoint_error_2d(f32(outputs["kp2d_dense"]), kp2d[..., :2],
                                              kp2d[..., 2], image_size, loss_config.reproj_eps),
                            has_kp2d)
    if loss_config.dense2d_heatmap and "kp2d_logits" in outputs:
        kp2d = f32(targets["kp2d"])
        terms["dense2d_heatmap"] = (
            heatmap_divergence(f32(outputs["kp2d_logits"]), kp2d, image_size,
                               loss_config.heatmap_sigma),
            has_kp2d)
    if "marker_logits" in outputs and (loss_config.marker_heatmap
                                       or loss_config.marker_locations):
        true_markers = f32(targets["markers"])
        uv = in_front_projection(true_markers, f32(K))
        kp = tf.concat([uv, tf.ones_like(uv[..., :1])], -1)
        if loss_config.marker_heatmap:
            terms["marker_heatmap"] = (
                heatmap_divergence(f32(outputs["marker_logits"]), kp, image_size,
                                   loss_config.heatmap_sigma), f32(targets["has_markers"]))
        if loss_config.marker_locations:
            terms["marker_locations"] = (
                location_map_error(f32(outputs["marker_locations"]), kp, centred(true_markers),
                                   image_size, loss_config.heatmap_sigma),
                f32(targets["has_markers"]))
    if loss_config.shape_prior:
        mean = tf.constant(body_model.mean_betas, tf.float32)
        terms["shape_prior"] = (tf.reduce_mean(tf.square(f32(outputs["betas"]) - mean), -1), ones)
    if loss_config.pose_prior:
        terms["pose_prior"] = (pose_prior(f32(outputs["rotmats"])), ones)
    return terms


def pose_loss(outputs, targets, K, image_size, body_model, loss_config):
    """(per-example weighted total (B,), metrics) with metrics[term] = mean over masked examples."""
    terms = loss_terms(outputs, targets, K, image_size, body_model, loss_config)
    total = tf.zeros_like(outputs["markers"][:, 0, 0], tf.float32)
    metrics = {}
    for name, (value, mask) in terms.items():
        total += float(loss_config[name]) * mask * value
        metrics[f"loss/{name}"] = tf.reduce_sum(mask * value) / tf.maximum(tf.reduce_sum(mask), 1.0)
    return total, metrics
