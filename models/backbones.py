"""CNN backbones that turn a crop into a feature map (no pooling), for the THUNDR-style head.

Why MobileNetV2 (alpha 1.0) for the light configs: its convolutional part has 2.26M parameters, which
is what the ERA supplement's Table 8 totals leave room for (e.g. MobileNet+Transformer-64 = 3.5M with
a ~0.9M MarkerPoser and a ~0.3M head). MobileNetV1 (3.23M) or V3-Large (3.00M) would overshoot those
totals on their own, V3-Small (0.94M) would undershoot them by ~1.3M. Like ResNet50 its output stride
is 32: a 480x480 crop gives a 15x15 map (1280 channels; ResNet50: 2048), i.e. 225 image tokens.

Images arrive as float32 RGB in [0, 1]; each backbone applies its own ImageNet preprocessing so
that `imagenet` weights see the input statistics they were trained on.
"""
import os
from pathlib import Path

import keras

from models.fused_layers import fuse

BACKBONES = ("mobilenet_v2", "resnet50")
# The finer feature maps a backbone can also return (the last layer at 1/8 and 1/16 of the input
# size): stride 8 for the dense 2D aid, stride 16 for the head's finer tokens.
_TAP_LAYERS = {
    "mobilenet_v2": {8: "block_6_expand_relu", 16: "block_13_expand_relu"},
    "resnet50": {8: "conv3_block4_out", 16: "conv4_block6_out"},
}

# File names keras.applications uses in its cache (<KERAS_HOME or ~/.keras>/models/). MobileNetV2's
# ImageNet weights exist for 96..224 px only; the network is fully convolutional, so Keras itself
# loads the 224 px file for other sizes, and so do we.
_IMAGENET_FILES = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
_IMAGENET_URL = {
    "mobilenet_v2": "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
    "resnet50": "https://storage.googleapis.com/tensorflow/keras-applications/resnet/",
}
# ResNet50's "caffe" preprocessing: BGR channel order, ImageNet mean subtracted, 0..255 scale.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def imagenet_weights_path(name):
    """Where keras.applications caches the no-top ImageNet weights of backbone `name`."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(home) / "models" / _IMAGENET_FILES[name]


@keras.saving.register_keras_serializable(package="pose_era")
class CaffePreprocess(keras.layers.Layer):
    """[0, 1] RGB -> ResNet50's expected input (BGR, 0..255, ImageNet mean removed)."""

    def call(self, x):
        x = x[..., ::-1] * 255.0
        return x - keras.ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=x.dtype)


def _resolve_weights(name, weights):
    """None | 'imagenet' | path -> a weights file path or None; clear error when it is missing."""
    if weights in (None, "none", "None", ""):
        return None
    if weights == "imagenet":
        path = imagenet_weights_path(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"backbone.weights=imagenet: {path} is missing and nothing is downloaded at run time; "
                f"put {_IMAGENET_FILES[name]} (from {_IMAGENET_URL[name]}{_IMAGENET_FILES[name]}) "
                f"there, or set backbone.weights=none or a file path")
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"backbone.weights={weights}: no such file; give an existing Keras weights file "
            f"(.h5 / .weights.h5 of {name} without top), 'imagenet' or 'none'")
    return path


def save_cnn_weights(backbone, path):
    """Writes the convolutional part of a built backbone (build_backbone's model) as a Keras
    weights file that `weights=path` loads back: a trained backbone becomes a pre-trained one."""
    cnn = [layer for layer in backbone.layers if isinstance(layer, keras.Model)][0]
    cnn.save_weights(str(path))


def build_backbone(name, image_size, weights=None, bn_momentum=None, taps=()):
    """A keras.Model mapping (B, S, S, 3) images in [0, 1] to a (B, S/32, S/32, C) feature map,
    or, with `taps` (strides among 8, 16), to [that map, then the (B, S/t, S/t, C_t) map of each
    tap t in order]: the finer maps the dense 2D aid and the head's stride-16 tokens read.

    name: mobilenet_v2 | resnet50; weights: None/'none', 'imagenet' (from the Keras cache only) or a
    weights-file path (loaded into the convolutional part, as keras.applications does).
    bn_momentum: the moving-statistics momentum of every BatchNormalization (None keeps Keras'
    0.999 / 0.99). Why: at 0.999 the moving statistics need ~5,000 steps to forget their
    initialisation, so a run of a few thousand steps evaluates (inference mode) with statistics
    far from the batch statistics it trained with.
    """
    if name not in BACKBONES:
        raise ValueError(f"backbone.name={name!r} is unknown; use one of {', '.join(BACKBONES)}")
    if image_size % 32 or image_size < 64:
        raise ValueError(f"data.image_size={image_size} must be a multiple of 32 and >= 64 "
                         "(the backbones have output stride 32)")
    if bn_momentum is not None and not 0.0 <= float(bn_momentum) < 1.0:
        raise ValueError(f"model.backbone.bn_momentum={bn_momentum} must be in [0, 1)")
    if set(taps) - set(_TAP_LAYERS[name]):
        raise ValueError(f"backbone taps {tuple(taps)}: {name} offers strides "
                         f"{', '.join(map(str, _TAP_LAYERS[name]))} besides its output")
    path = _resolve_weights(name, weights)
    shape = (image_size, image_size, 3)
    if name == "mobilenet_v2":
        cnn = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=shape,
                                             alpha=1.0)
        preprocess = keras.layers.Rescaling(2.0, offset=-1.0, name="to_pm1")
    else:
        cnn = keras.applications.ResNet50(include_top=False, weights=None, input_shape=shape)
        preprocess = CaffePreprocess(name="caffe_preprocess")
    cnn = fuse(cnn)   # the same function, faster to train on a CPU (models/fused_layers.py)
    if path is not None:
        try:
            cnn.load_weights(str(path))
        except (ValueError, OSError) as err:
            raise ValueError(f"backbone.weights: {path} does not fit {name} without top ({err}); "
                             "give the matching no-top weights file") from err
    if bn_momentum is not None:
        for layer in cnn.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    if taps:
        cnn = keras.Model(cnn.inputs, [cnn.output] + [cnn.get_layer(_TAP_LAYERS[name][t]).output
                                                      for t in taps], name=cnn.name)
    image = keras.Input(shape, name="image")
    return keras.Model(image, cnn(preprocess(image)), name="backbone")
