"""Config sections every task shares, declared once: the training driver's (training/driver.py)
`train` and `optimizer`, and the ERA settings (`era`) of every model that uses ERA.

Each task's configs call these with the values that differ; every key is here with its default,
so `--set` works alike everywhere and a misspelt key fails loudly (TypeError).
"""
import ml_collections


def section(defaults, values, where):
    """A ConfigDict of `defaults` updated with `values`; an undeclared key is a TypeError."""
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise TypeError(f"{where}: undeclared key(s) {', '.join(unknown)}; declare them in "
                        "configs/common.py")
    return ml_collections.ConfigDict({**defaults, **values})


def era_section(**values):
    """pose_era.era.ERA's settings where model.activation = era (build_activation's `era`)."""
    defaults = dict(
        degree=2,                 # denominator degree 2n: 2 = one partial fraction (3/2 rational)
        init="swish",             # relu | leaky_relu | swish | gelu | gelu_tanh | random
        sharing="layer",          # layer: one parameter set per layer | channel: per channel
    )
    return section(defaults, values, "era")


def train_section(**values):
    defaults = dict(
        steps=0,                  # > 0: run length in steps (wins over epochs)
        epochs=0,                 # run length in epochs of the task's train_size
        batch_size=32,            # global batch (split over replicas)
        seed=0,                   # Keras seed; data shuffling too unless data.seed is set
        log_every=100,            # TensorBoard scalars (and the task's summarize hook)
        ckpt_every=1000,          # checkpoint interval in steps (and at the end)
        eval_every=0,             # evaluation interval in steps; 0: at the end only
        image_every=0,            # pose: a rendered prediction in TensorBoard; 0: never
        jit_compile="auto",       # true | false | auto (= on where a GPU is visible)
        mixed_precision="float32",  # float32 | mixed_float16 | mixed_bfloat16; ERA stays f32
        devices=[],               # explicit MirroredStrategy devices (tests); [] = automatic
        init_from="",             # a workdir or prefix whose model weights start a fresh run
    )
    return section(defaults, values, "train")


def optimizer_section(**values):
    defaults = dict(
        name="adam",              # adam | sgd
        lr=1e-3,
        momentum=0.0,             # sgd only
        schedule="constant",      # constant | piecewise | exponential | cosine
        warmup_steps=0,           # cosine only: linear warm-up from 0
        final_lr_fraction=0.0,    # cosine only: lr at the last step, as a fraction of lr
        boundaries=(),            # piecewise: in epochs when train.epochs is set, else steps
        factor=0.1,               # piecewise: lr factor at each boundary
        decay_rate=0.99,          # exponential (staircase) only
        decay_steps=4000,         # exponential only
        l2=0.0,                   # weight decay on the task's regularized_weights
        clip_norm=0.0,            # global-norm gradient clipping; 0: off
    )
    return section(defaults, values, "optimizer")
