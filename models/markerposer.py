"""MarkerPoser: 3D markers -> body-model parameters (THUNDR), and the layer that poses the body.

Input: K markers in the camera frame (metres). They are centred on their centroid c before the MLP
(so the network is exactly translation-equivariant; orientation stays in the camera frame, since the
root rotation is predicted in that frame), flattened to 3K numbers. With canonical_frame=True they
are also turned into a canonical frame first: R0 = the rotation that best aligns the mean body's
centred markers (the template) to the input's (Kabsch), the MLP sees R0^T (m - c), and its root
rotation and translation offset are turned back by R0, so the network is exactly
rotation-equivariant too (rotating the markers about c by Q turns the root by Q, leaves every
other output unchanged) and need not learn all yaws. The MLP (Dense -> [layer norm] ->
activation, `hidden` sizes, ~0.9M parameters for K=64 and (1024, 512, 256)) outputs
- 6D rotations of all J joints (root = global orientation, camera frame; others local to parent),
- shape betas (S),
- a translation offset d: transl = c + d (canonical frame: c + R0 (d + p) - p, p the rest root
  joint of the predicted betas, about which the root rotation turns the body; affine in the betas,
  its coefficients are constants of the layer; p = 0 for Anny, which is centred on its pelvis).
The last layer has a zero kernel and a bias equal to the upright mean body (models/mean_body.py):
an untrained MarkerPoser returns the mean body facing the camera, sitting on the markers' centroid.
"""
import json
from pathlib import Path

import numpy as np
import keras
from keras import ops

from models.heads import era_kwargs
from models.mean_body import mean_body, rot6d_of
from pose_era import geometry, io
from pose_era.era import build_activation, build_norm


def kabsch_rotation(template, points):
    """(K,3) centred template, (B,K,3) centred points -> (B,3,3) rotations R minimising
    sum_k |R t_k - x_k|^2 (pose_era.geometry.best_rotation). Call under stop_gradient."""
    points = ops.convert_to_tensor(points, "float32")
    template = ops.broadcast_to(ops.convert_to_tensor(template, "float32"), ops.shape(points))
    return geometry.best_rotation(template, points)[0]


def _rest_root_joint(body_model):
    """(3,), (3,S): the rest root joint is pivot + pivot_dirs @ betas (exactly: it is affine)."""
    s = body_model.num_betas
    betas = np.concatenate([np.zeros((1, s)), np.eye(s)]).astype(np.float32)
    root = np.asarray(body_model.rest_joints(betas))[:, 0].astype(np.float64)
    return root[0].astype(np.float32), (root[1:] - root[0]).T.astype(np.float32)


def initial_output_bias(body_model, mean=None):
    """Bias (J*6 + S + 3,) of the output layer: upright mean body at the markers' centroid."""
    mean = mean_body(body_model) if mean is None else mean
    rot = np.tile(rot6d_of(np.eye(3, dtype=np.float32)), (body_model.num_joints, 1))
    rot[0] = rot6d_of(mean["root"])
    offset = mean["transl_offset"] - mean["markers"].mean(0)
    return np.concatenate([rot.reshape(-1), np.zeros(body_model.num_betas, np.float32),
                           offset]).astype(np.float32)


@keras.saving.register_keras_serializable(package="pose_era")
class MarkerPoser(keras.layers.Layer):
    """(B,K,3) markers -> dict(rot6d (B,J,6), rotmats (B,J,3,3), betas (B,S), transl (B,3))."""

    def __init__(self, num_joints, num_betas, *, hidden=(1024, 512, 256), activation="relu",
                 era=None, act_norm=False, output_bias=None, canonical_frame=False, template=None,
                 pivot=None, pivot_dirs=None, **kwargs):
        # The centring and the output layer stay float32 under a mixed-precision policy: float16
        # would round camera-frame coordinates (~5 m) to millimetres. Hidden layers follow it.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.num_joints, self.num_betas = int(num_joints), int(num_betas)
        self.hidden = tuple(int(h) for h in hidden)
        self.activation, self.era, self.act_norm = activation, era_kwargs(era), bool(act_norm)
        n_out = 6 * self.num_joints + self.num_betas + 3
        bias = np.zeros(n_out, np.float32) if output_bias is None else np.asarray(output_bias)
        if bias.shape != (n_out,):
            raise ValueError(f"MarkerPoser output_bias has shape {bias.shape}, expected ({n_out},)")
        self.output_bias = bias.astype(np.float32)
        # canonical_frame: `template` (K,3) the mean body's markers (centred here); `pivot` (3,)
        # and `pivot_dirs` (3,S) the rest root joint pivot + pivot_dirs @ betas. Constants of the
        # layer's config, not weights.
        self.canonical_frame = bool(canonical_frame)
        self.template = self.pivot = self.pivot_dirs = None
        if self.canonical_frame:
            if template is None:
                raise ValueError("MarkerPoser(canonical_frame=True) needs the template markers "
                                 "(use new_markerposer(body_model, canonical_frame=True))")
            template = np.asarray(template, np.float32).reshape(-1, 3)
            self.template = template - template.mean(0)
            self.pivot = np.zeros(3, np.float32) if pivot is None else np.asarray(
                pivot, np.float32).reshape(3)
            self.pivot_dirs = (np.zeros((3, self.num_betas), np.float32) if pivot_dirs is None
                               else np.asarray(pivot_dirs, np.float32).reshape(3, self.num_betas))
        # Each hidden layer is an attribute of its own: tf.train.Checkpoint does not follow a
        # Keras-tracked list, so layers kept only in a list were missing from every training
        # checkpoint (a trainable MarkerPoser lost its hidden layers on resume and evaluation).
        self._hidden_names = []
        for i, units in enumerate(self.hidden):
            parts = [("fc", keras.layers.Dense(units, name=f"fc{i}"))]
            if self.act_norm:
                parts.append(("norm", build_norm("dense")))
            parts.append(("act", build_activation(activation, self.era)))
            for kind, layer in parts:
                setattr(self, f"{kind}{i}", layer)
                self._hidden_names.append(f"{kind}{i}")
        self.out = keras.layers.Dense(
            n_out, kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(self.output_bias), dtype="float32",
            name="params")

    @property
    def hidden_layers(self):
        return [getattr(self, name) for name in self._hidden_names]

    def build(self, input_shape):
        if self.canonical_frame and input_shape[1] != len(self.template):
            raise ValueError(f"MarkerPoser: {input_shape[1]} markers, its canonical-frame "
                             f"template has {len(self.template)}")
        shape = (None, 3 * input_shape[1])
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.out.build(shape)

    def call(self, markers):
        markers = ops.cast(markers, "float32")
        centroid = ops.mean(markers, axis=1)
        centred = markers - centroid[:, None]
        if self.canonical_frame:
            # stop_gradient: nothing upstream needs the gradient through R0 (the output is
            # equivariant in it), and the SVD's gradient is unbounded at (near-)equal singular
            # values (a symmetric or degenerate marker set) -> NaN/Inf from finite inputs.
            r0 = ops.stop_gradient(kabsch_rotation(self.template, centred))
            centred = ops.einsum("bji,bkj->bki", r0, centred)          # R0^T (m - c)
        x = ops.reshape(centred, (-1, 3 * markers.shape[1]))
        for layer in self.hidden_layers:
            x = layer(x)
        y = ops.cast(self.out(x), "float32")
        j6 = 6 * self.num_joints
        rot6d = ops.reshape(y[:, :j6], (-1, self.num_joints, 6))
        offset = y[:, j6 + self.num_betas:]
        if self.canonical_frame:
            # Gram-Schmidt commutes with rotations: turning both 3-vectors of the root's 6D by R0
            # gives R0 @ root_canonical.
            root = ops.reshape(ops.einsum("bij,bnj->bni", r0,
                                          ops.reshape(rot6d[:, 0], (-1, 2, 3))), (-1, 1, 6))
            rot6d = ops.concatenate([root, rot6d[:, 1:]], axis=1)
            pivot = ops.convert_to_tensor(self.pivot) + ops.einsum(
                "cs,bs->bc", ops.convert_to_tensor(self.pivot_dirs), y[:, j6:j6 + self.num_betas])
            offset = ops.einsum("bij,bj->bi", r0, offset + pivot) - pivot
        return {"rot6d": rot6d, "rotmats": geometry.rot6d_to_matrix(rot6d),
                "betas": y[:, j6:j6 + self.num_betas], "transl": centroid + offset}

    def get_config(self):
        return {**super().get_config(), "num_joints": self.num_joints,
                "num_betas": self.num_betas, "hidden": list(self.hidden),
                "activation": self.activation, "era": self.era, "act_norm": self.act_norm,
                "output_bias": self.output_bias.tolist(), "canonical_frame": self.canonical_frame,
                "template": None if self.template is None else self.template.tolist(),
                "pivot": None if self.pivot is None else self.pivot.tolist(),
                "pivot_dirs": None if self.pivot_dirs is None else self.pivot_dirs.tolist()}


def new_markerposer(body_model, *, hidden=(1024, 512, 256), activation="relu", era=None,
                    act_norm=False, name="markerposer", canonical_frame=False):
    """A built MarkerPoser for `body_model` whose output starts at the upright mean body
    (canonical_frame: the input is turned into the mean body's frame first, see the module)."""
    mean = mean_body(body_model)
    pivot, pivot_dirs = _rest_root_joint(body_model)
    layer = MarkerPoser(body_model.num_joints, body_model.num_betas, hidden=hidden,
                        activation=activation, era=era, act_norm=act_norm,
                        output_bias=initial_output_bias(body_model, mean), name=name,
                        canonical_frame=canonical_frame, template=mean["markers"],
                        pivot=pivot, pivot_dirs=pivot_dirs)
    layer.build((None, body_model.num_markers, 3))
    return layer


class BodyLayer(keras.layers.Layer):
    """Wraps pose_era.body.BodyModel (no trainable weights) so a Keras model can pose the body.

    Always float32 (skinning under float16 loses millimetres); returns the body model's dict.
    """

    def __init__(self, body_model, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(trainable=False, **kwargs)
        self.body_model = body_model

    def call(self, betas, rotmats, transl):
        return self.body_model(ops.cast(betas, "float32"), ops.cast(rotmats, "float32"),
                               ops.cast(transl, "float32"))


def save_weights(layer, path):
    """Write the MarkerPoser's weights to an .npz (atomic): names and arrays in variable order,
    and whether it works in the canonical frame (the same weights mean something else without)."""
    arrays = {f"w{i:03d}": np.asarray(v) for i, v in enumerate(layer.weights)}
    names = np.array([v.path.split("/", 1)[-1] for v in layer.weights])
    io.atomic_write(path, lambda f: np.savez(f, names=names,
                                             canonical_frame=np.array(layer.canonical_frame),
                                             **arrays))


DEFAULT_SETTINGS = {"hidden": (1024, 512, 256), "activation": "relu", "act_norm": False,
                    "canonical_frame": False}


def weights_settings(path):
    """The model.markerposer settings a weights file was trained with (hidden, activation,
    act_norm, canonical_frame): tools/pretrain_markerposer.py's arguments in the .json beside
    it, the .npz's own canonical_frame flag first; DEFAULT_SETTINGS where neither says."""
    meta = Path(path).with_suffix(".json")
    args = json.loads(meta.read_text()).get("args", {}) if meta.is_file() else {}
    settings = {k: args.get(k, v) for k, v in DEFAULT_SETTINGS.items()}
    if isinstance(settings["hidden"], str):
        settings["hidden"] = tuple(int(h) for h in settings["hidden"].split(","))
    with np.load(path) as data:
        if "canonical_frame" in data:
            settings["canonical_frame"] = bool(data["canonical_frame"])
    return {**settings, "act_norm": bool(settings["act_norm"]),
            "canonical_frame": bool(settings["canonical_frame"])}


def load_weights(layer, path):
    """Load an .npz written by save_weights into a built MarkerPoser; clear error on mismatch."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model.markerposer.weights={path}: no such file; run "
                                "`python tools/pretrain_markerposer.py --out PATH` first or set "
                                "model.markerposer.weights=none")
    with np.load(path) as data:
        names = [str(n) for n in data["names"]]
        arrays = [data[f"w{i:03d}"] for i in range(len(names))]
        canonical = bool(data["canonical_frame"]) if "canonical_frame" in data else False
    if canonical != layer.canonical_frame:
        raise ValueError(f"model.markerposer.weights={path} was trained with canonical_frame="
                         f"{canonical}, this MarkerPoser has canonical_frame="
                         f"{layer.canonical_frame}; set model.markerposer.canonical_frame="
                         f"{str(canonical).lower()}")
    if len(arrays) != len(layer.weights) or any(
            a.shape != tuple(v.shape) for a, v in zip(arrays, layer.weights)):
        raise ValueError(f"model.markerposer.weights={path} does not fit this MarkerPoser "
                         f"(file: {[a.shape for a in arrays]}, model: "
                         f"{[tuple(v.shape) for v in layer.weights]}); pre-train it with the same "
                         "body model, num_markers and markerposer.hidden")
    for v, a in zip(layer.weights, arrays):
        v.assign(a)
