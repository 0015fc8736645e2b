"""THUNDR's marker head: feature map -> tokens -> one shared block x L -> iteratively refined markers.

Zanfir et al., ICCV 2021, Fig. 3, as the ERA paper uses it:
- the backbone's HxW feature map becomes H*W tokens; the crop's intrinsics, normalised by the image
  size as (fx/S, fy/S, cx/S - 1/2, cy/S - 1/2), are concatenated to every token; a linear embedding
  to the model width, plus a positional encoding (learned, or fixed 2D sine-cosine);
- one learnable [markers] token is prepended;
- ONE block (models/heads.py) with shared weights is applied L times; after each application a
  (shared) MLP reads the [markers] token and regresses a correction of all K markers:
  M_l = M_{l-1} + dM_l, in metres, camera frame;
- M_0 is the mean body (mean shape and pose, upright, facing the camera) placed so that it fills
  `fill` of the crop: depth z = max(fx * width, fy * height) / (fill * S) and centred on the ray
  through the crop centre. The correction MLP's last layer is zero-initialised, so an untrained
  head returns M_0 exactly at every step.
All L estimates are returned (deep supervision).
"""
import numpy as np
import keras
from keras import ops

from models.heads import MLP, era_kwargs
from models.keypoint_input import KeypointInput
from models.lifter import KeypointLifter

POS_ENCODINGS = ("learned", "sinusoidal")


def intrinsics_features(K, image_size):
    """(B,3,3) crop intrinsics -> (B,4) (fx/S, fy/S, cx/S - 1/2, cy/S - 1/2), O(1) numbers."""
    s = float(image_size)
    return ops.stack([K[:, 0, 0] / s, K[:, 1, 1] / s, K[:, 0, 2] / s - 0.5,
                      K[:, 1, 2] / s - 0.5], axis=-1)


def initial_markers(K, image_size, rest_markers, extent, fill):
    """M_0 (B,K,3): the centred mean-body markers at the depth where the body fills the crop.

    rest_markers (K,3) centred on the body's bounding box, extent (2,) its x/y size in metres.
    """
    s = float(image_size)
    fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
    z = ops.maximum(fx * float(extent[0]), fy * float(extent[1])) / (fill * s)
    x = (s / 2 - cx) * z / fx
    y = (s / 2 - cy) * z / fy
    centre = ops.stack([x, y, z], axis=-1)[:, None, :]
    return centre + ops.convert_to_tensor(np.asarray(rest_markers, np.float32))[None]


def sinusoidal_2d(height, width, dim):
    """(H*W, dim) fixed 2D sine-cosine encoding: dim/2 channels for rows, dim/2 for columns."""
    if dim % 4:
        raise ValueError(f"head.width={dim} must be divisible by 4 for sinusoidal encoding")
    quarter = dim // 4
    freq = 1.0 / (10000.0 ** (np.arange(quarter) / quarter))
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    parts = []
    for pos in (rows.reshape(-1), cols.reshape(-1)):
        angle = pos[:, None] * freq[None]
        parts += [np.sin(angle), np.cos(angle)]
    return np.concatenate(parts, axis=1).astype(np.float32)


class ThundrHead(keras.layers.Layer):
    """[feature map (B,H,W,C), K (B,3,3)] -> all marker estimates (B, L, K, 3), metres.

    A third input (B,N,F), keypoint tokens (models/keypoint_tokens.py), is embedded by its own
    Dense plus a learned per-keypoint embedding and appended after the image tokens. With
    `lift_hidden` > 0 the tokens' keypoint positions are also lifted to M_0 by a
    models.lifter.KeypointLifter of that width (zero-initialised: untrained, M_0 is unchanged).
    With `keypoint_input` the LAST input is an external detector's keypoints (B,17,3) (u / S,
    v / S, flag), added to the tokens, the [markers] token and M_0 by a
    models.keypoint_input.KeypointInput (its lifter `input_lift_hidden` wide; zero-initialised:
    untrained, every output is exactly that of the head without it).

    `block` is the shared layer (heads.TransformerBlock or heads.MixerBlock); it is called `depth`
    times on the token sequence. `rest_markers`, `extent` come from models.mean_body.mean_body.
    """

    def __init__(self, block, *, depth, width, image_size, rest_markers, extent, fill=0.8,
                 pos_encoding="learned", corr_hidden=256, activation="relu", era=None,
                 act_norm=True, lift_hidden=0, keypoint_input=False, input_lift_hidden=512,
                 **kwargs):
        super().__init__(**kwargs)
        if pos_encoding not in POS_ENCODINGS:
            raise ValueError(f"model.head.pos_encoding={pos_encoding!r} is unknown; use one of "
                             f"{', '.join(POS_ENCODINGS)}")
        if not 0.0 < fill <= 2.0:
            raise ValueError(f"model.init_fill={fill} must be in (0, 2]")
        self.block, self.depth, self.width = block, int(depth), int(width)
        self.image_size, self.fill, self.pos_encoding = int(image_size), float(fill), pos_encoding
        self.rest_markers = np.asarray(rest_markers, np.float32)
        self.extent = np.asarray(extent, np.float32)
        self.num_markers = self.rest_markers.shape[0]
        self.embed = keras.layers.Dense(self.width, name="embed")
        self.ln_markers = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_markers")
        # float32 output: marker coordinates accumulate in float32 under mixed precision too.
        self.corr = MLP(corr_hidden, 3 * self.num_markers, activation=activation,
                        era=era_kwargs(era), act_norm=act_norm, out_initializer="zeros",
                        dtype="float32", name="marker_correction")
        self.lifter = None if not lift_hidden else KeypointLifter(
            self.num_markers, image_size=image_size, hidden=lift_hidden, activation=activation,
            era=era, act_norm=act_norm, name="lifter")
        self.has_keypoint_input = bool(keypoint_input)
        self._input_settings = dict(hidden=corr_hidden, lift_hidden=input_lift_hidden,
                                    activation=activation, era=era, act_norm=act_norm)

    def build(self, input_shape):
        feat_shape, _ = input_shape[:2]
        h, w = feat_shape[1], feat_shape[2]
        self.grid = (int(h), int(w))
        self.has_keypoint_tokens = len(input_shape) - 2 - self.has_keypoint_input == 1
        if self.has_keypoint_input:    # an external detector's keypoints (keypoint_input.py)
            self.keypoint_input = KeypointInput(
                self.num_markers, width=self.width, image_size=self.image_size, grid=self.grid,
                keypoint_tokens=self.has_keypoint_tokens, name="keypoint_input",
                **self._input_settings)
        if self.has_keypoint_tokens:   # keypoint tokens (models/keypoint_tokens.py)
            self.embed_keypoints = keras.layers.Dense(self.width, name="embed_keypoints")
            self.keypoint_embedding = self.add_weight(
                shape=(input_shape[2][1], self.width), name="keypoint_embedding",
                initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        self.marker_token = self.add_weight(shape=(1, 1, self.width), name="marker_token",
                                            initializer=keras.initializers.TruncatedNormal(
                                                stddev=0.02))
        if self.pos_encoding == "learned":
            self.pos = self.add_weight(shape=(h * w, self.width), name="pos_embedding",
                                       initializer=keras.initializers.TruncatedNormal(
                                           stddev=0.02))
        else:
            self.pos = sinusoidal_2d(h, w, self.width)

    def call(self, inputs):
        feats, K = inputs[:2]
        K = ops.cast(K, "float32")
        h, w = self.grid
        tokens = ops.reshape(feats, (-1, h * w, feats.shape[-1]))
        intr = ops.cast(intrinsics_features(K, self.image_size), tokens.dtype)
        intr = ops.broadcast_to(intr[:, None, :], (ops.shape(tokens)[0], h * w, 4))
        x = self.embed(ops.concatenate([tokens, intr], axis=-1))
        x = x + ops.cast(self.pos, x.dtype)[None]
        given = self.keypoint_input([inputs[-1], K]) if self.has_keypoint_input else {}
        if given:
            x = x + ops.cast(given["tokens"], x.dtype)
        if self.has_keypoint_tokens:
            keypoints = self.embed_keypoints(ops.cast(inputs[2], x.dtype))
            keypoints = keypoints + ops.cast(self.keypoint_embedding, x.dtype)[None]
            if given:
                keypoints = keypoints + ops.cast(given["keypoint_tokens"], x.dtype)
            x = ops.concatenate([x, keypoints], axis=1)
        marker_token = ops.broadcast_to(ops.cast(self.marker_token, x.dtype),
                                        (ops.shape(x)[0], 1, self.width))
        if given:
            marker_token = marker_token + ops.cast(given["marker_token"], x.dtype)
        x = ops.concatenate([marker_token, x], axis=1)
        markers = initial_markers(K, self.image_size, self.rest_markers, self.extent, self.fill)
        if self.lifter is not None:
            markers = markers + self.lifter([inputs[2][..., -4:], K])
        if "start" in given:
            markers = markers + given["start"]
        estimates = []
        for _ in range(self.depth):
            x = self.block(x)
            delta = self.corr(self.ln_markers(x[:, 0]))
            markers = markers + ops.reshape(ops.cast(delta, "float32"), (-1, self.num_markers, 3))
            estimates.append(markers)
        return ops.stack(estimates, axis=1)

