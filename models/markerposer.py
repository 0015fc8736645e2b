"""MarkerPoser: 3D markers -> body-model parameters (THUNDR), and the layer that poses the body.

Input: K markers in the camera frame (metres). They are centred on their centroid c before the MLP
(so the network is exactly translation-equivariant; orientation stays in the camera frame, since the
root rotation is predicted in that frame), flattened to 3K numbers. The MLP (Dense -> [layer norm]
-> activation, `hidden` sizes, ~0.9M parameters for K=64 and (1024, 512, 256)) outputs
- 6D rotations of all J joints (root = global orientation, camera frame; others local to the parent),
- shape betas (S),
- a translation offset d: transl = c + d.
The last layer has a zero kernel and a bias equal to the upright mean body (models/mean_body.py):
an untrained MarkerPoser returns the mean body facing the camera, sitting on the markers' centroid.
"""
from pathlib import Path

import numpy as np
import keras
from keras import ops

from models.heads import era_kwargs
from models.mean_body import mean_body, rot6d_of
from pose_era import geometry, io
from pose_era.era import build_activation, build_norm


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

    def __init__(self, num_joints, num_betas, hidden=(1024, 512, 256), activation="relu", era=None,
                 act_norm=False, output_bias=None, **kwargs):
        # The centring and the output layer stay float32 under a mixed-precision policy: float16
        # would round camera-frame coordinates (~5 m) to millimetres. Hidden layers follow the policy.
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
        self.hidden_layers = []
        for i, units in enumerate(self.hidden):
            self.hidden_layers.append(keras.layers.Dense(units, name=f"fc{i}"))
            if self.act_norm:
                self.hidden_layers.append(build_norm("dense"))
            self.hidden_layers.append(build_activation(activation, self.era))
        self.out = keras.layers.Dense(
            n_out, kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(self.output_bias), dtype="float32",
            name="params")

    def build(self, input_shape):
        shape = (None, 3 * input_shape[1])
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.out.build(shape)

    def call(self, markers):
        centroid = ops.mean(markers, axis=1)
        x = ops.reshape(markers - centroid[:, None], (-1, 3 * markers.shape[1]))
        for layer in self.hidden_layers:
            x = layer(x)
        y = self.out(x)
        j6 = 6 * self.num_joints
        rot6d = ops.reshape(y[:, :j6], (-1, self.num_joints, 6))
        return {"rot6d": rot6d, "rotmats": geometry.rot6d_to_matrix(rot6d),
                "betas": y[:, j6:j6 + self.num_betas],
                "transl": centroid + y[:, j6 + self.num_betas:]}

    def get_config(self):
        return {**super().get_config(), "num_joints": self.num_joints,
                "num_betas": self.num_betas, "hidden": list(self.hidden),
                "activation": self.activation, "era": self.era, "act_norm": self.act_norm,
                "output_bias": self.output_bias.tolist()}


def new_markerposer(body_model, hidden=(1024, 512, 256), activation="relu", era=None,
                    act_norm=False, name="markerposer"):
    """A built MarkerPoser for `body_model` whose output starts at the upright mean body."""
    layer = MarkerPoser(body_model.num_joints, body_model.num_betas, hidden, activation, era,
                        act_norm, output_bias=initial_output_bias(body_model), name=name)
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
    """Write the MarkerPoser's weights to an .npz (atomic): names and arrays in variable order."""
    arrays = {f"w{i:03d}": np.asarray(v) for i, v in enumerate(layer.weights)}
    names = np.array([v.path.split("/", 1)[-1] for v in layer.weights])
    io.atomic_write(path, lambda f: np.savez(f, names=names, **arrays))


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
    if len(arrays) != len(layer.weights) or any(
            a.shape != tuple(v.shape) for a, v in zip(arrays, layer.weights)):
        raise ValueError(f"model.markerposer.weights={path} does not fit this MarkerPoser "
                         f"(file: {[a.shape for a in arrays]}, model: "
                         f"{[tuple(v.shape) for v in layer.weights]}); pre-train it with the same "
                         "body model, num_markers and markerposer.hidden")
    for v, a in zip(layer.weights, arrays):
        v.assign(a)
