"""Defaults shared by the image-classification configs (the ERA supplement's sanity benchmarks).

Each configs/<dataset>_<model>.py calls `classification_config` with what differs (dataset,
model, schedule), so every classification config has the same keys and `--set` works alike.
`arg="quick"` (e.g. `--config digits_cnn:quick`) shortens a run to `quick_epochs`, scaling the
learning-rate boundaries with it, for smoke tests on a CPU.
"""
import ml_collections

from configs.common import era_section, optimizer_section, train_section
from training.config import ConfigError

def classification_config(arg, *, dataset, model, image_size, epochs, batch_size, lr,
                          boundaries, l2=1e-3, eval_batch_size=500, quick_epochs=1,
                          augment=False, log_every=100, ckpt_every=1000, eval_every=0):
    """A ConfigDict with every key the driver and the classification task read."""
    if arg not in (None, "quick"):
        raise ConfigError(f"unknown config argument '{arg}'; choose 'quick' or none")
    if arg == "quick":
        boundaries = tuple(b * quick_epochs / epochs for b in boundaries)
        epochs = quick_epochs
    config = ml_collections.ConfigDict()
    config.task = "classification"

    # Data: digits | mnist | cifar10 | imagenet (data_pipelines/classification.py).
    config.data = dict(
        name=dataset,
        image_size=image_size,
        augment=augment,           # CIFAR-10: shifts up to 6 px and horizontal flips
        shuffle_buffer=50_000,
        dir="",                    # ImageNet: folder with train/ val/ or TFRecord shards
        label_offset=1,            # ImageNet TFRecords store 1-based labels
        train_size=0,              # ImageNet TFRecords: number of training examples
    )

    # Model: fcn | cnn | resnet18 (models/classifiers.py); a norm precedes every activation.
    config.model = dict(
        name=model,
        activation="relu",         # relu | leaky_relu | swish | gelu | era
        era=era_section(),
        norm_learnable="channel",  # channel: gamma/beta per channel; single: one scalar each
        width_scale=1.0,           # x every hidden layer's units / channels (rounded, >= 1);
                                   # tools/capacity_sweep.py sweeps it from 1/32 to 1
        width=64,                  # resnet18 only: width of the first stage
        stem="cifar",              # resnet18 only: cifar (3x3 conv) | imagenet (7x7/2 + pool)
    )

    # Training (training/driver.py); train.steps > 0 overrides train.epochs.
    config.train = train_section(
        epochs=epochs,
        batch_size=batch_size,
        log_every=log_every,
        ckpt_every=ckpt_every,
        eval_every=eval_every,     # 0: evaluate at the end only
    )

    config.optimizer = optimizer_section(
        name="sgd",
        lr=lr,
        momentum=0.9,
        schedule="piecewise",
        boundaries=tuple(boundaries),  # in epochs
        decay_rate=0.1,            # exponential schedule only
        decay_steps=1000,          # exponential schedule only
        l2=l2,
    )

    config.eval = dict(batch_size=eval_batch_size)
    return config
