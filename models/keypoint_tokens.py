"""Keypoint tokens: what the dense 2D aid knows about each keypoint, as extra tokens for the head.

Why: the head's image tokens are the stride-32 map, a 5x5 grid at the CPU recipe's 160 px, and
the markers it regresses from them are ~7 px off in the image, while the dense aid's heatmaps on
the stride-8 map place the keypoints to ~3.5 px (docs/pose_results.md). A keypoint token carries
that position and the features where the keypoint is, so the head no longer has to recover them
from coarse tokens: per keypoint, the heatmap-weighted mean of the aid's features (the appearance
at the keypoint: which side of the limb faces the camera, its shading), the expected position
(u, v) and the heatmap's spread (how sure the aid is). It is the attention-pooling readout of
integral pose regression (Sun et al., ECCV 2018), used here as input to THUNDR's head rather
than as the output.
"""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="pose_era")
class KeypointTokens(keras.layers.Layer):
    """[logits (B,H,W,N), features (B,H,W,C)] -> (B,N,C+4) tokens: per keypoint the
    softmax(logits)-weighted mean feature, its expected (u, v) and standard deviation (su, sv),
    both in units of the map size, (u, v) centred on the map (in [-1/2, 1/2])."""

    def call(self, inputs):
        logits, features = inputs
        logits = ops.cast(logits, "float32")
        h, w, n = logits.shape[1], logits.shape[2], logits.shape[3]
        prob = ops.softmax(ops.reshape(logits, (-1, h * w, n)), axis=1)       # (B,HW,N)
        flat = ops.cast(ops.reshape(features, (-1, h * w, features.shape[-1])), "float32")
        pooled = ops.einsum("bpn,bpc->bnc", prob, flat)                       # (B,N,C)
        cols, rows = ops.meshgrid((ops.arange(w, dtype="float32") + 0.5) / w - 0.5,
                                  (ops.arange(h, dtype="float32") + 0.5) / h - 0.5)
        grid = ops.stack([ops.reshape(cols, (-1,)), ops.reshape(rows, (-1,))], axis=-1)
        mean = ops.einsum("bpn,pk->bnk", prob, grid)                          # (B,N,2)
        second = ops.einsum("bpn,pk->bnk", prob, ops.square(grid))
        spread = ops.sqrt(ops.maximum(second - ops.square(mean), 0.0) + 1e-8)
        return ops.concatenate([pooled, mean, spread], axis=-1)

    def compute_output_shape(self, input_shape):
        logits, features = input_shape
        return (logits[0], logits[3], features[3] + 4)
