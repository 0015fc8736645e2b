"""A dense 2D keypoint head on the backbone's stride-8 features: a training aid, not the pose path.

Why: a backbone trained from scratch learns image features slowly from the 3D marker losses alone,
which reach it through the pooled-token head; per-pixel keypoint evidence trains the early layers
directly (the issue's measurement: 2D error 19.5 -> 15.8 px and a lower 3D error at step 1,000 with
it). Heatmap logits -> spatial softmax -> expected pixel position (soft-argmax, differentiable, no
heatmap targets to render). THUNDR's own dense term plays the same role. The evaluated network
ignores this output; `model.dense2d.enabled=false` removes the head.
"""
import keras
from keras import ops

from models.scales import merge_scales

COCO_KEYPOINTS = 17   # the example schema's kp2d


@keras.saving.register_keras_serializable(package="pose_era")
class SoftArgmax2D(keras.layers.Layer):
    """(B,H,W,N) logits -> (B,N,2) expected (u, v) in pixels of an image `stride` times larger.

    Cell (i, j) covers pixels [stride*j, stride*(j+1)) x [stride*i, stride*(i+1)), so its centre
    is stride*(j + 0.5) (pixel origin at the top-left corner, as everywhere in the project).
    """

    def __init__(self, stride, **kwargs):
        super().__init__(**kwargs)
        self.stride = float(stride)

    def call(self, logits):
        logits = ops.cast(logits, "float32")
        h, w, n = logits.shape[1], logits.shape[2], logits.shape[3]
        flat = ops.reshape(ops.transpose(logits, (0, 3, 1, 2)), (-1, n, h * w))
        prob = ops.reshape(ops.softmax(flat, axis=-1), (-1, n, h, w))
        u = (ops.arange(w, dtype="float32") + 0.5) * self.stride
        v = (ops.arange(h, dtype="float32") + 0.5) * self.stride
        return ops.stack([ops.sum(ops.sum(prob, axis=2) * u, axis=-1),
                          ops.sum(ops.sum(prob, axis=3) * v, axis=-1)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


def dense2d_head(features, image_size, hidden, context=None, num_markers=0):
    """(B,H,W,C) stride-8 features -> (dict of the aid's outputs, its (B,H,W,hidden) features
    that the heatmaps are read from). The outputs: kp2d_dense (B,17,2) COCO-17
    keypoints in crop pixels (kp2d's order) and kp2d_logits (B,H,W,17) their heatmap logits
    (losses.heatmap_divergence); with `num_markers` K > 0 also marker_logits (B,H,W,K) and
    marker_locations (B,H,W,K,3), every marker's heatmap and location maps (its x, y, z relative
    to the marker centroid, metres; losses.location_map_error).

    context: the backbone's last (stride-32) feature map, or None. When given, it is merged into
    the stride-8 map (models/scales.py): the keypoints can then use the whole body's context,
    and the aid's gradient reaches the layers the marker head reads.
    """
    x = features if context is None else merge_scales(features, context, hidden, "dense2d")
    x = keras.layers.Conv2D(hidden, 3, padding="same", activation="relu",
                            name="dense2d_conv")(x)
    logits = keras.layers.Conv2D(COCO_KEYPOINTS, 1, name="dense2d_logits")(x)
    out = {"kp2d_dense": SoftArgmax2D(image_size / features.shape[1], name="dense2d")(logits),
           "kp2d_logits": logits}
    if num_markers:
        h, w = x.shape[1], x.shape[2]
        out["marker_logits"] = keras.layers.Conv2D(num_markers, 1, name="dense2d_markers")(x)
        out["marker_locations"] = keras.layers.Reshape((h, w, num_markers, 3),
                                                       name="dense2d_locations_3d")(
            keras.layers.Conv2D(3 * num_markers, 1, name="dense2d_locations")(x))
    return out, x
