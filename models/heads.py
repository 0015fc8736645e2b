"""The shared-weight blocks of the THUNDR-style head: a Transformer encoder layer or an MLP-Mixer layer.

THUNDR applies ONE block L times with the same weights (models/thundr.py does the looping); this file
only defines the block. Both blocks are pre-norm residual blocks on (B, N, D) tokens. Every MLP inside
them is Dense -> layer norm -> activation -> Dense: the activation is a config choice
(`pose_era.era.build_activation`: era, relu, leaky_relu, swish, gelu) and the layer norm right before
it is how the ERA paper wires ERA; it is kept for every activation (`act_norm=True`) so that an
activation ablation changes the activation only.

Sizes of the ERA supplement: Transformer 8 heads, FFN hidden 1024; Mixer token-mixing hidden 1024,
channel-mixing hidden 2048; width 64 or 256.
"""
import keras

from pose_era.era import build_activation, build_norm

HEAD_KINDS = ("transformer", "mixer")


def era_kwargs(era):
    """ERA kwargs as a plain dict (accepts a ConfigDict), or None."""
    if era is None:
        return None
    return dict(era.to_dict() if hasattr(era, "to_dict") else era)


@keras.saving.register_keras_serializable(package="pose_era")
class MLP(keras.layers.Layer):
    """Dense(hidden) -> [layer norm] -> activation -> Dense(out): the one MLP of every block."""

    def __init__(self, hidden, out, *, activation="relu", era=None, act_norm=True,
                 out_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.out = int(hidden), int(out)
        self.activation, self.era, self.act_norm = activation, era_kwargs(era), bool(act_norm)
        self.out_initializer = keras.initializers.get(out_initializer)
        self.fc1 = keras.layers.Dense(self.hidden, name="fc1")
        self.norm = build_norm("dense") if self.act_norm else None
        self.act = build_activation(activation, self.era)
        self.fc2 = keras.layers.Dense(self.out, kernel_initializer=self.out_initializer, name="fc2")

    def call(self, x):
        h = self.fc1(x)
        if self.norm is not None:
            h = self.norm(h)
        return self.fc2(self.act(h))


    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "out": self.out,
                "activation": self.activation, "era": self.era, "act_norm": self.act_norm,
                "out_initializer": keras.initializers.serialize(self.out_initializer)}


@keras.saving.register_keras_serializable(package="pose_era")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm Transformer encoder layer: x + MHA(LN(x)); x + FFN(LN(x))."""

    def __init__(self, width, *, num_heads=8, ffn_hidden=1024, activation="relu", era=None,
                 act_norm=True, **kwargs):
        super().__init__(**kwargs)
        if width % num_heads:
            raise ValueError(f"head.width={width} must be divisible by head.num_heads={num_heads}")
        self.width, self.num_heads, self.ffn_hidden = int(width), int(num_heads), int(ffn_hidden)
        self.activation, self.era, self.act_norm = activation, era_kwargs(era), bool(act_norm)
        self.ln_attn = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_attn")
        self.attn = keras.layers.MultiHeadAttention(self.num_heads, self.width // self.num_heads,
                                                    name="attn")
        self.ln_ffn = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_ffn")
        self.ffn = MLP(self.ffn_hidden, self.width, activation=activation, era=self.era,
                       act_norm=act_norm, name="ffn")

    def call(self, x):
        h = self.ln_attn(x)
        x = x + self.attn(h, h)
        return x + self.ffn(self.ln_ffn(x))


    def get_config(self):
        return {**super().get_config(), "width": self.width, "num_heads": self.num_heads,
                "ffn_hidden": self.ffn_hidden, "activation": self.activation, "era": self.era,
                "act_norm": self.act_norm}


@keras.saving.register_keras_serializable(package="pose_era")
class MixerBlock(keras.layers.Layer):
    """MLP-Mixer layer: x + TokenMLP(LN(x)^T)^T; x + ChannelMLP(LN(x)).

    The token-mixing MLP acts across the N tokens (its input size is N, fixed at build time: the
    image tokens plus the [markers] token), the channel-mixing MLP across the D features.
    """

    def __init__(self, width, *, token_hidden=1024, channel_hidden=2048, activation="relu",
                 era=None, act_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.width, self.token_hidden = int(width), int(token_hidden)
        self.channel_hidden = int(channel_hidden)
        self.activation, self.era, self.act_norm = activation, era_kwargs(era), bool(act_norm)
        self.ln_token = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_token")
        self.ln_channel = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_channel")
        self.channel_mlp = MLP(self.channel_hidden, self.width, activation=activation,
                               era=self.era, act_norm=act_norm, name="channel_mlp")
        self.token_mlp = None

    def build(self, input_shape):
        num_tokens = input_shape[1]
        if num_tokens is None:
            raise ValueError("MixerBlock needs a static token count (fixed image size)")
        self.token_mlp = MLP(self.token_hidden, num_tokens, activation=self.activation,
                             era=self.era, act_norm=self.act_norm, name="token_mlp")

    def call(self, x):
        h = keras.ops.transpose(self.ln_token(x), (0, 2, 1))
        x = x + keras.ops.transpose(self.token_mlp(h), (0, 2, 1))
        return x + self.channel_mlp(self.ln_channel(x))


    def get_config(self):
        return {**super().get_config(), "width": self.width, "token_hidden": self.token_hidden,
                "channel_hidden": self.channel_hidden, "activation": self.activation,
                "era": self.era, "act_norm": self.act_norm}


def build_block(head, activation, era):
    """The shared block named by config.model.head (kind, width, sizes) with the given activation."""
    if head.kind == "transformer":
        return TransformerBlock(head.width, num_heads=head.num_heads, ffn_hidden=head.ffn_hidden,
                                activation=activation, era=era, act_norm=head.act_norm,
                                name="shared_block")
    if head.kind == "mixer":
        return MixerBlock(head.width, token_hidden=head.token_hidden,
                          channel_hidden=head.channel_hidden, activation=activation, era=era,
                          act_norm=head.act_norm, name="shared_block")
    raise ValueError(f"model.head.kind={head.kind!r} is unknown; use one of {', '.join(HEAD_KINDS)}")
