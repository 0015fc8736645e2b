"""The ERA paper's image-classification sanity networks: FCN, CNN and a pre-activation ResNet-18.

They exist to check ERA on small, well-understood problems before the pose network. Every
activation is preceded by a normalisation, as the paper wires ERA: layer norm for dense features,
instance norm for conv features (`pose_era.era.build_norm`). The activation is a config choice
(`pose_era.era.build_activation`), so the same network compares ReLU, Swish, GELU and ERA.

- FCN: flatten, dense 512-256-128 (each dense -> layer norm -> activation), dense to the logits.
- CNN (martrim/ERA `Example_Utilities/Network_Definer.py`): two 3x3 convs of 64 filters (each
  conv -> instance norm -> activation), 2x2 max pooling, flatten, dense 128 -> layer norm ->
  activation, dense to the logits.
- ResNet-18: pre-activation basic blocks (He et al. 2016, "Identity mappings"), 2-2-2-2 blocks of
  width w, 2w, 4w, 8w. Pre-activation is what keeps "a norm right before every activation" true in
  a residual network: each block computes norm -> act -> conv -> norm -> act -> conv and adds the
  shortcut after the last conv. Instance norm stands in for batch norm (the ERA paper does not
  publish its ResNet-18; instance norm is its wiring for conv features and has no batch
  statistics to synchronise across replicas). `stem="cifar"` is one 3x3 conv; `stem="imagenet"`
  the usual 7x7/2 conv and 3x3/2 max pooling.

`width_scale` multiplies every hidden layer's units / channels (rounded, at least 1), so one
network is swept down in capacity (the supplement: rational activations help most where a network
lacks capacity for its task; tools/capacity_sweep.py).

Logits are float32 even under a mixed-precision policy (the loss is computed on them).
"""
import math

import keras
from keras import layers

from pose_era.era import build_activation, build_norm

FCN_WIDTHS = (512, 256, 128)
CNN_FILTERS = 64
CNN_DENSE = 128
RESNET18_BLOCKS = (2, 2, 2, 2)


def scaled(units, width_scale):
    """`units` x `width_scale`, rounded half up, at least 1 (x1/32 of a 16-unit layer is 1)."""
    if not width_scale > 0:
        raise ValueError(f"width_scale must be > 0, got {width_scale!r}")
    return max(1, math.floor(units * width_scale + 0.5))


def _norm_act(x, kind, activation, era, norm_learnable):
    """The paper's wiring: normalisation directly before the activation."""
    x = build_norm(kind, norm_learnable)(x)
    return build_activation(activation, era)(x)


def _logits(x, num_classes):
    return layers.Dense(num_classes, dtype="float32", name="logits")(x)


def fcn(input_shape, num_classes, activation="relu", era=None, norm_learnable="channel",
        widths=FCN_WIDTHS, width_scale=1.0):
    """Dense widths[0]-...-num_classes on the flattened image, layer norm before each activation."""
    inputs = keras.Input(input_shape, name="image")
    x = layers.Flatten()(inputs)
    for width in widths:
        x = layers.Dense(scaled(width, width_scale))(x)
        x = _norm_act(x, "dense", activation, era, norm_learnable)
    return keras.Model(inputs, _logits(x, num_classes), name="fcn")


def cnn(input_shape, num_classes, activation="relu", era=None, norm_learnable="channel",
        filters=CNN_FILTERS, dense=CNN_DENSE, width_scale=1.0):
    """Two 3x3 convs (instance norm), 2x2 max pooling, dense (layer norm), dense logits."""
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for _ in range(2):
        x = layers.Conv2D(scaled(filters, width_scale), 3, padding="same")(x)
        x = _norm_act(x, "conv", activation, era, norm_learnable)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(scaled(dense, width_scale))(x)
    x = _norm_act(x, "dense", activation, era, norm_learnable)
    return keras.Model(inputs, _logits(x, num_classes), name="cnn")


def _preact_block(x, width, stride, activation, era, norm_learnable):
    """norm -> act -> conv3x3(stride) -> norm -> act -> conv3x3, plus the (projected) shortcut."""
    pre = _norm_act(x, "conv", activation, era, norm_learnable)
    if stride != 1 or x.shape[-1] != width:
        shortcut = layers.Conv2D(width, 1, strides=stride, use_bias=False)(pre)
    else:
        shortcut = x
    y = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(pre)
    y = _norm_act(y, "conv", activation, era, norm_learnable)
    y = layers.Conv2D(width, 3, padding="same", use_bias=False)(y)
    return layers.Add()([y, shortcut])


def resnet18(input_shape, num_classes, activation="relu", era=None, norm_learnable="channel",
             width=64, stem="cifar", width_scale=1.0):
    """Pre-activation ResNet-18; `width` sets all stages (64 = the standard network)."""
    width = scaled(width, width_scale)
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"resnet18 stem must be 'cifar' or 'imagenet', got {stem!r}")
    inputs = keras.Input(input_shape, name="image")
    if stem == "cifar":
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    else:
        x = layers.Conv2D(width, 7, strides=2, padding="same", use_bias=False)(inputs)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for stage, blocks in enumerate(RESNET18_BLOCKS):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _preact_block(x, width * 2 ** stage, stride, activation, era, norm_learnable)
    x = _norm_act(x, "conv", activation, era, norm_learnable)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _logits(x, num_classes), name="resnet18")


def build(name, input_shape, num_classes, activation="relu", era=None, norm_learnable="channel",
          width_scale=1.0, **kwargs):
    """The classifier called `name` (fcn, cnn, resnet18); kwargs go to its builder."""
    builders = {"fcn": fcn, "cnn": cnn, "resnet18": resnet18}
    if name not in builders:
        raise ValueError(f"unknown classifier '{name}'; choose one of: {', '.join(builders)}")
    return builders[name](input_shape, num_classes, activation=activation, era=era,
                          norm_learnable=norm_learnable, width_scale=width_scale, **kwargs)
