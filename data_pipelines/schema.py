"""The example schema every pose dataset yields (docs/contracts.md), with its zero-filling.

One example, before batching: image (S,S,3) float32 in [0,1]; K (3,3) crop intrinsics;
kp2d (17,3) COCO-17 crop pixels + visibility; j3d (17,3) H36M-17 camera frame metres + has_j3d;
markers (K,3) + has_markers; betas (S_b,), pose (J,3) axis-angle, transl (3,) + has_params;
imgname. Datasets that lack a label fill it with zeros and its has_* flag with 0, so that every
source batches alike and can be mixed; the sizes of the body-model labels come from LabelSizes.
"""
import dataclasses

import tensorflow as tf

HAS_FLAGS = {"j3d": "has_j3d", "markers": "has_markers", "betas": "has_params",
             "pose": "has_params", "transl": "has_params"}


@dataclasses.dataclass(frozen=True)
class LabelSizes:
    """Sizes of the body-model-dependent labels (defaults: the Anny body-model file's)."""
    num_markers: int = 64
    num_betas: int = 16
    num_joints: int = 31

    @classmethod
    def from_body_model(cls, body):
        """The sizes of a pose_era.body.BodyModel."""
        return cls(body.num_markers, body.num_betas, body.num_joints)


def shapes(sizes, image_size):
    """Static shape of every key of an example."""
    return {
        "image": (image_size, image_size, 3), "K": (3, 3), "kp2d": (17, 3),
        "j3d": (17, 3), "has_j3d": (),
        "markers": (sizes.num_markers, 3), "has_markers": (),
        "betas": (sizes.num_betas,), "pose": (sizes.num_joints, 3), "transl": (3,),
        "has_params": (), "imgname": (),
    }


def complete(example, sizes, image_size):
    """Adds every missing key as zeros (its has_* flag 0), casts to float32, fixes shapes.

    A label given without its flag counts as present (flag 1).
    """
    out = {}
    for key, shape in shapes(sizes, image_size).items():
        if key == "imgname":
            out[key] = tf.convert_to_tensor(example.get(key, ""), tf.string)
            continue
        if key in example:
            value = tf.cast(example[key], tf.float32)
        elif key.startswith("has_"):
            given = [k for k, flag in HAS_FLAGS.items() if flag == key and k in example]
            value = tf.constant(1.0 if given else 0.0)
        else:
            value = tf.zeros(shape, tf.float32)
        out[key] = tf.ensure_shape(tf.reshape(value, shape), shape)
    return out
