"""The same CNN, computed faster: TensorFlow's fused BatchNorm kernel and no separate zero-padding.

Why: in a TensorFlow profile of the CPU recipe's training step (mixer_64:cpu,long, 160 px,
batch 16) Keras 3's BatchNormalization, which computes its batch moments and normalisation as
separate elementwise ops (Mul, Tile, SquaredDifference, Sum, ...) whose gradients walk the large
early feature maps many times, took about half of the ops' time, and the most expensive single
op was the Slice that is the gradient of MobileNetV2's `block_1_pad` (the ZeroPadding2D before
a stride-2 depthwise convolution). Both are replaced by operations that compute exactly the
same function (the measured gain is ~10 % of the whole step, BUILD_NOTES.md "Backbone training
step": the profiler overstates many small ops):
- `BatchNormalization` (this module's) runs FusedBatchNormV3 (one kernel each way) in
  training mode and keeps Keras' moving-statistics update (biased batch variance, the layer's
  momentum); inference mode and every case the kernel does not cover are Keras' own code.
- keras.applications pads a stride-2 3x3 convolution's input by ((0, 1), (0, 1)) when its size
  is even (`correct_pad`) and convolves with "valid"; for even sizes "same" padding pads exactly
  so, so the pad layer becomes an Identity and the convolution "same".
Variables, their names and their order do not change: weights files and checkpoints of the
plain network load into the fused one and back (tests/test_fused_layers.py).
"""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="pose_era")
class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training-mode call on 4-D float32 channels-last
    inputs is TensorFlow's fused kernel (same outputs, same moving-statistics update).

    The class keeps Keras' name on purpose: Keras' .weights.h5 files address a model's layers
    by their class names, so files saved from the plain network load into this one and back."""

    def _fusable(self, inputs, training, mask):
        return (training and self.trainable and mask is None and not self.renorm
                and not self.synchronized and self.scale and self.center
                and inputs.dtype == tf.float32 and len(inputs.shape) == 4
                and self.axis in (-1, 3) and keras.backend.backend() == "tensorflow")

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, data_format="NHWC",
            is_training=True)
        # The kernel returns the Bessel-corrected variance; Keras averages the biased one.
        shape = tf.shape(inputs)
        count = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + variance * (1.0 - self.momentum))
        return outputs


def _same_padding_pads(layer):
    """Whether `layer` is keras.applications' ((0, 1), (0, 1)) pad before a strided conv."""
    return (isinstance(layer, keras.layers.ZeroPadding2D)
            and tuple(map(tuple, layer.padding)) == ((0, 1), (0, 1)))


def fuse(cnn):
    """A copy of the functional CNN `cnn` with this module's BatchNormalization for Keras' and
    every ((0, 1), (0, 1)) zero-padding folded into the "valid" stride-2 convolution it feeds
    as "same" padding. Fresh weights: load them afterwards.

    Raises ValueError when a folded pad feeds anything but a "valid" stride-2 3x3 convolution
    of an even-sized map (the only case where "same" pads the same way)."""
    folded = set()
    for layer in cnn.layers:
        if not _same_padding_pads(layer):
            continue
        consumers = [node.operation for node in layer._outbound_nodes]
        for conv in consumers:
            size = layer.input.shape[1:3]
            if not (isinstance(conv, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
                    and conv.padding == "valid"
                    and tuple(conv.strides) == (2, 2) and tuple(conv.kernel_size) == (3, 3)
                    and all(s % 2 == 0 for s in size)):
                raise ValueError(f"cannot fold {layer.name} into {conv.name}: not a 'valid' "
                                 f"stride-2 3x3 convolution of an even-sized map ({size})")
            folded.add(conv.name)

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            return BatchNormalization.from_config(config)
        if _same_padding_pads(layer):
            return keras.layers.Identity(name=layer.name)
        if layer.name in folded:
            config["padding"] = "same"
        return layer.__class__.from_config(config)

    return keras.models.clone_model(cnn, clone_function=clone)
