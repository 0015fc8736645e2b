"""Lifting the dense aid's 2D keypoints to a first 3D marker estimate: THUNDR's M_0 made informed.

Why: THUNDR starts its refinement from the mean body (M_0) and the shared block must learn the
whole articulation from coarse image tokens, which it does slowly from scratch. The dense aid
places COCO-17 keypoints to a few pixels early in training, and 2D keypoints alone determine most
of a body's articulation: an MLP lifting the *true* COCO-17 keypoints of the synthetic training
set to the 64 centred markers reaches 54.2 mm marker error after Procrustes in 3,000 steps, 77.0
with the aid's 3.5 px of noise (tools/lifting_floor.py, docs/pose_results.md), against ~107 mm
for the released head's markers. So the head can start from a lifted body (Martinez et al.,
ICCV 2017: a residual MLP on normalised 2D) and spend its blocks on what 2D leaves open (depth
order of the limbs, from the image tokens).

The input is the keypoints' viewing rays K^-1 (u, v, 1), centred on their mean and divided by
their RMS spread (translation- and scale-free 2D pose), the heatmaps' spreads in the same units
(the aid's certainty), the mean ray and the log spread (where and how large the body is: the
perspective the pose is seen in). The output is a correction of the mean body's centred markers,
in metres, from a zero-initialised last layer, so an untrained lifter returns the mean body.
"""
import keras
from keras import ops

from models.heads import MLP, era_kwargs


def ray_features(geometry, K, image_size, confidence=False):
    """(B, 4N + 3) or, with `confidence`, (B, 3N + 3) normalised ray features (module docstring).

    geometry (B, N, 4): (u, v) centred on the crop and the heatmaps' spread (su, sv), in units of
    the crop size `image_size`. With `confidence`, geometry (B, N, 3): (u, v) and a flag in
    {0, 1} (an external detector's keypoints, models/keypoint_input.py): the mean and the spread
    are over the flagged keypoints only, an unflagged keypoint's normalised ray is 0, the flags
    stand where the spreads stood, and with fewer than two flagged keypoints the log spread is 0
    (nothing is known of the body's size)."""
    s = float(image_size)
    pixels = (geometry[..., :2] + 0.5) * s                                 # (B,N,2)
    focal = ops.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None]               # (B,1,2)
    centre = ops.stack([K[:, 0, 2], K[:, 1, 2]], -1)[:, None]
    rays = (pixels - centre) / focal
    flat = lambda x: ops.reshape(x, (-1, x.shape[1] * x.shape[2]))  # noqa: E731
    if not confidence:
        mean = ops.mean(rays, axis=1, keepdims=True)
        spread = ops.sqrt(ops.mean(ops.sum(ops.square(rays - mean), -1), 1) + 1e-8)  # (B,)
        scale = spread[:, None, None]
        shape = (rays - mean) / scale
        certainty = geometry[..., 2:] * s / focal / scale
        return ops.concatenate([flat(shape), flat(certainty), mean[:, 0],
                                ops.log(spread)[:, None]], axis=-1)
    flag = geometry[..., 2:3]                                              # (B,N,1)
    count = ops.sum(flag, axis=1)                                          # (B,1)
    mean = ops.sum(rays * flag, axis=1, keepdims=True) / ops.maximum(count, 1.0)[:, None]
    spread = ops.sqrt(ops.sum(ops.sum(ops.square(rays - mean), -1, keepdims=True) * flag, 1)
                      / ops.maximum(count, 1.0) + 1e-8)                    # (B,1)
    enough = ops.cast(count >= 2.0, rays.dtype)
    scale = ops.maximum(spread, 1e-3)[:, None]
    shape = (rays - mean) / scale * flag
    return ops.concatenate([flat(shape), flat(flag), mean[:, 0], ops.log(scale[:, 0]) * enough],
                           axis=-1)


class KeypointLifter(keras.layers.Layer):
    """[keypoint geometry (B,N,4), K (B,3,3)] -> (B, M, 3) marker offsets from the mean body.

    The geometry is KeypointTokens' last four columns: (u, v) centred on the map and its spread
    (su, sv), in units of the map (= crop) size `image_size`. With `confidence`, (B,N,3): (u, v)
    and a 0/1 flag per keypoint (`ray_features`).
    """

    def __init__(self, num_markers, *, image_size, hidden=512, blocks=2, activation="relu",
                 era=None, act_norm=True, confidence=False, **kwargs):
        super().__init__(**kwargs)
        self.num_markers, self.image_size = int(num_markers), float(image_size)
        self.confidence = bool(confidence)
        self.embed = keras.layers.Dense(hidden, name="embed")
        # Each block is an attribute of its own: tf.train.Checkpoint does not follow a Keras
        # list (models/markerposer.py has the story).
        self._block_names = [f"block{i}" for i in range(int(blocks))]
        for name in self._block_names:
            setattr(self, name, MLP(hidden, hidden, activation=activation, era=era_kwargs(era),
                                    act_norm=act_norm, name=name))
        self.out = MLP(hidden, 3 * self.num_markers, activation=activation,
                       era=era_kwargs(era), act_norm=act_norm, out_initializer="zeros",
                       dtype="float32", name="out")

    def features(self, geometry, K):
        """(B, 4N + 3) normalised ray features (`ray_features`)."""
        return ray_features(geometry, K, self.image_size, self.confidence)

    def call(self, inputs):
        geometry, K = inputs
        x = self.embed(self.features(ops.cast(geometry, "float32"), ops.cast(K, "float32")))
        for name in self._block_names:
            x = x + getattr(self, name)(x)
        return ops.reshape(ops.cast(self.out(x), "float32"), (-1, self.num_markers, 3))
