"""Merging a fine feature map with the backbone's coarse, whole-body one (a one-level FPN step).

Why: a stride-8 or stride-16 cell of MobileNetV2 sees only part of a person, too little to tell a
left arm from a right one, while the stride-32 map sees the whole body but places it on a 5x5 grid
at 160 px. Their sum is both precise and informed: the dense 2D aid's keypoints read it, and with
`model.head.token_stride=16` so do the head's tokens.
"""
import keras


def merge_scales(fine, coarse, channels, prefix):
    """relu(conv1x1(fine) + upsample(conv1x1(coarse))): (B,h,w,channels) on the fine grid.

    The layers are named `<prefix>_fine`, `_context`, `_upsample`, `_merge`, `_merge_relu`.
    """
    up = fine.shape[1] // coarse.shape[1]
    x = keras.layers.Conv2D(channels, 1, name=f"{prefix}_fine")(fine)
    context = keras.layers.Conv2D(channels, 1, name=f"{prefix}_context")(coarse)
    x = keras.layers.Add(name=f"{prefix}_merge")(
        [x, keras.layers.UpSampling2D(up, interpolation="bilinear",
                                      name=f"{prefix}_upsample")(context)])
    return keras.layers.Activation("relu", name=f"{prefix}_merge_relu")(x)
