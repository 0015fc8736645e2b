"""External 2D keypoints as an input of the head: a detector's COCO-17 keypoints beside the image.

Why: the released network (trained on grey synthetic bodies) places real people's joints poorly
(18 % right on the real-photo set, docs/eval_demo.md), while BlazePose, trained on real people,
finds them well. A keypoint-fed network (`model.keypoint_input.enabled`) reads BlazePose's
keypoints in its crop (eval/demo.py) and, in training, the true keypoints corrupted to look
like BlazePose's (data_pipelines/keypoint_noise.py, which also defines the input: (B, 17, 3)
per keypoint (u / S, v / S, flag), flag 0 and u = v = 0 for an absent keypoint).

Three paths into the head (models/thundr.py), each ending in a ZERO-INITIALISED layer and
ADDED to what the head already computes, so that with the new weights at their initial values
the network's outputs are exactly those of the network without the input. That is what lets a
keypoint-fed network be fine-tuned from the released one: the fine-tune starts from the
release's outputs and the gradient moves the new layers from there (their inputs are not zero,
so in a trained head their kernels get a gradient from the first step; in a fresh head the
correction MLP's last layer is zero as well, and paths 1, 2 and 4 start once it has moved).
New tokens would not do: the Mixer's
token-mixing MLP has one weight per token, so 17 more tokens change its shapes and the
release's weights no longer load.
1. Image tokens: each keypoint splatted onto the head's H x W token grid as a Gaussian of one
   cell (`TOKEN_SIGMA`) times its flag, (B, HW, 17), projected by a zero-initialised Dense to
   the width and added to the image tokens: each token learns which joints lie on it.
2. The [markers] token: an MLP (zero-initialised last layer) of the whole 2D pose (the
   features below) added to it: the readout token starts the blocks knowing the 2D pose.
3. M_0: a models.lifter.KeypointLifter on the keypoints (its `confidence` mode, zero-initialised
   last layer) adds a 3D offset to the mean body the refinement starts from, as the head's own
   lifter does from the dense aid's keypoints (docs/pose_results.md: 2D keypoints alone place
   the markers to 77 mm after Procrustes at 3.5 px of noise, against ~107 mm for the head).
With keypoint tokens from the dense aid (model.head.keypoint_tokens) a fourth: each external
keypoint's (u - 1/2, v - 1/2, flag) projected by a zero-initialised Dense onto that keypoint's
token.
The pose features (paths 2 and 3) are the lifter's: the present keypoints' viewing rays, centred
on their mean and divided by their spread, the flags, the mean ray and the log spread (lifter.py).
"""
import keras
from keras import ops

from models.heads import MLP, era_kwargs
from models.lifter import KeypointLifter, ray_features

TOKEN_SIGMA = 1.0      # the splat's Gaussian standard deviation, in token cells


def splat(keypoints, grid):
    """(B, N, 3) keypoint input -> (B, H*W, N): flag x exp(-d^2 / (2 TOKEN_SIGMA^2)), d the
    distance in cells from the keypoint to each cell's centre (row-major, as the tokens)."""
    h, w = grid
    cols, rows = ops.meshgrid((ops.arange(w, dtype="float32") + 0.5) / w,
                              (ops.arange(h, dtype="float32") + 0.5) / h)
    centres = ops.stack([ops.reshape(cols, (-1,)), ops.reshape(rows, (-1,))], axis=-1)  # (HW,2)
    scale = ops.convert_to_tensor([float(w), float(h)])
    diff = (keypoints[:, None, :, :2] - centres[None, :, None, :]) * scale  # (B,HW,N,2) cells
    weight = ops.exp(-ops.sum(ops.square(diff), -1) / (2.0 * TOKEN_SIGMA ** 2))
    return weight * keypoints[:, None, :, 2]


class KeypointInput(keras.layers.Layer):
    """[keypoints (B,N,3), K (B,3,3)] -> dict of what ThundrHead adds (module docstring):
    `tokens` (B, H*W, width) to the image tokens of the `grid` (H, W); `marker_token`
    (B, 1, width) to the [markers] token; with `keypoint_tokens`, `keypoint_tokens` (B, N, width)
    to the dense aid's keypoint tokens; with `lift_hidden` > 0, `start` (B, M, 3) metres to M_0.
    Every one is exactly 0 with the initial weights."""

    def __init__(self, num_markers, *, width, image_size, grid, hidden=256, lift_hidden=512,
                 keypoint_tokens=False, activation="relu", era=None, act_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.num_markers, self.width = int(num_markers), int(width)
        self.image_size, self.grid = float(image_size), tuple(int(g) for g in grid)
        self.lift_hidden = int(lift_hidden)
        zeros = dict(kernel_initializer="zeros", bias_initializer="zeros")
        self.to_tokens = keras.layers.Dense(self.width, name="to_tokens", **zeros)
        self.to_marker_token = MLP(hidden, self.width, activation=activation,
                                   era=era_kwargs(era), act_norm=act_norm,
                                   out_initializer="zeros", dtype="float32",
                                   name="to_marker_token")
        self.to_keypoint_tokens = keras.layers.Dense(
            self.width, name="to_keypoint_tokens", **zeros) if keypoint_tokens else None
        self.lifter = KeypointLifter(
            self.num_markers, image_size=image_size, hidden=self.lift_hidden,
            activation=activation, era=era, act_norm=act_norm, confidence=True,
            name="lifter") if self.lift_hidden else None

    def call(self, inputs):
        keypoints, K = (ops.cast(t, "float32") for t in inputs)
        # The lifter's `confidence` geometry: (u, v) centred on the crop (0 when absent), flag.
        geometry = ops.concatenate([keypoints[..., :2] - 0.5 * keypoints[..., 2:],
                                    keypoints[..., 2:]], axis=-1)
        pose = ray_features(geometry, K, self.image_size, confidence=True)
        out = {"tokens": self.to_tokens(splat(keypoints, self.grid)),
               "marker_token": self.to_marker_token(pose)[:, None, :]}
        if self.to_keypoint_tokens is not None:
            out["keypoint_tokens"] = self.to_keypoint_tokens(geometry)
        if self.lifter is not None:
            out["start"] = self.lifter([geometry, K])
        return out
