"""The full pose network: {image, K} -> markers -> MarkerPoser -> body model -> mesh and joints.

    image (S,S,3) -> backbone (no pooling) -> feature map -> ThundrHead (shared block x L, markers
    refined L times) -> markers (K,3) -> MarkerPoser -> rotations, betas, translation -> BodyLayer

`build_pose_model(config, body_model)` reads `config.model` (declared, with defaults and
comments, in configs/common_pose.py) and `config.data.image_size`. `count_params(model)` splits the parameter
count the way the ERA supplement's Table 8 reports it.
"""
import keras

from models import markerposer as mp
from models.backbones import build_backbone
from models.dense2d import dense2d_head
from models.heads import build_block
from models.keypoint_anchor import KeypointAnchor
from models.keypoint_tokens import KeypointTokens
from models.mean_body import mean_body
from models.scales import merge_scales
from models.thundr import ThundrHead
from pose_era.era import ACTIVATIONS

# The name of a keypoint-fed model's third input (model.keypoint_input, models/keypoint_input.py).
KEYPOINTS = "keypoints"

# The head's image tokens: the backbone's last map (stride 32, the paper's), or stride 16 merged
# with it (models/scales.py): 10x10 tokens instead of 5x5 at the CPU recipe's 160 px.
TOKEN_STRIDES = (32, 16)


def _check(m, body_model):
    if m.activation not in ACTIVATIONS:
        raise ValueError(f"model.activation={m.activation!r} is unknown; use one of "
                         f"{', '.join(ACTIVATIONS)}")
    if int(m.head.token_stride) not in TOKEN_STRIDES:
        raise ValueError(f"model.head.token_stride={m.head.token_stride} is not supported; use "
                         f"{' or '.join(map(str, TOKEN_STRIDES))}")
    if m.head.keypoint_tokens and not m.dense2d.enabled:
        raise ValueError("model.head.keypoint_tokens=true reads the dense 2D aid's heatmaps; "
                         "set model.dense2d.enabled=true too")
    if m.head.lift_hidden and not m.head.keypoint_tokens:
        raise ValueError(f"model.head.lift_hidden={m.head.lift_hidden} lifts the keypoint "
                         "tokens; set model.head.keypoint_tokens=true too (or lift_hidden=0)")
    if body_model.num_markers != m.num_markers:
        raise ValueError(f"model.num_markers={m.num_markers} but the body model has "
                         f"{body_model.num_markers} markers; build the body model with "
                         f"num_markers={m.num_markers} or set model.num_markers="
                         f"{body_model.num_markers}")


def build_markerposer(m, body_model):
    """The MarkerPoser of config.model, its pre-trained weights loaded when given."""
    layer = mp.new_markerposer(body_model, hidden=m.markerposer.hidden,
                               activation=m.markerposer.activation, era=m.era,
                               act_norm=m.markerposer.act_norm,
                               canonical_frame=bool(m.markerposer.canonical_frame))
    if str(m.markerposer.weights).lower() not in ("none", ""):
        mp.load_weights(layer, m.markerposer.weights)
    elif not m.markerposer.trainable:
        raise ValueError("model.markerposer.trainable=false without model.markerposer.weights "
                         "would freeze an untrained MarkerPoser (the mean body for every input); "
                         "give pre-trained weights (tools/pretrain_markerposer.py) or set "
                         "trainable=true")
    layer.trainable = bool(m.markerposer.trainable)
    return layer


def build_head(m, image_size, mean):
    """The ThundrHead of config.model `m` (its shared block, activation, ERA settings) for
    crops of `image_size` px; `mean` is models.mean_body.mean_body of the body model."""
    return ThundrHead(build_block(m.head, m.activation, m.era), depth=m.head.depth,
                      width=m.head.width, image_size=image_size, rest_markers=mean["markers"],
                      extent=mean["extent"], fill=m.init_fill, pos_encoding=m.head.pos_encoding,
                      corr_hidden=m.head.corr_hidden, activation=m.activation, era=m.era,
                      act_norm=m.head.act_norm, lift_hidden=m.head.lift_hidden,
                      keypoint_input=bool(m.keypoint_input.enabled),
                      input_lift_hidden=int(m.keypoint_input.lift_hidden), name="head")


def build_pose_model(config, body_model):
    """Functional keras.Model {image (B,S,S,3) in [0,1], K (B,3,3)} -> dict of outputs; with
    model.keypoint_input.enabled also {keypoints (B,17,3)}: an external detector's COCO-17
    keypoints in the crop (u / S, v / S, flag), models/keypoint_input.py; with
    model.keypoint_input.anchor every 3D output is then moved onto those keypoints
    (models/keypoint_anchor.py) and `shift` (B,3) says by how much. The outputs:

    markers_list (B,L,K,3) all refinement steps, markers (B,K,3) the last one, rot6d (B,J,6),
    rotmats (B,J,3,3), betas (B,S), transl (B,3), and the posed body's vertices (B,V,3),
    joints (B,J,3), mesh_markers (B,K,3), h36m17 (B,17,3), coco17 (B,17,3); camera frame, metres.
    With model.dense2d.enabled also the training aid's outputs (models/dense2d.py): kp2d_dense
    (B,17,2), its COCO-17 keypoints in crop pixels, kp2d_logits (B,S/8,S/8,17), their heatmap
    logits, and with model.dense2d.markers marker_logits and marker_locations.
    """
    m, size = config.model, int(config.data.image_size)
    _check(m, body_model)
    mean = mean_body(body_model)
    image = keras.Input((size, size, 3), name="image")
    K = keras.Input((3, 3), name="K")
    fine_tokens = int(m.head.token_stride) == 16
    taps = (8,) * bool(m.dense2d.enabled) + (16,) * fine_tokens
    backbone = build_backbone(m.backbone.name, size, m.backbone.weights, m.backbone.bn_momentum,
                              taps=taps)
    feats, *tapped = backbone(image) if taps else [backbone(image)]
    tapped = dict(zip(taps, tapped))
    extra, head_inputs = {}, []
    if m.dense2d.enabled:
        extra, dense_features = dense2d_head(tapped[8], size, m.dense2d.hidden,
                                             feats if m.dense2d.context else None,
                                             m.num_markers if m.dense2d.markers else 0)
        if m.head.keypoint_tokens:
            head_inputs = [KeypointTokens(name="keypoint_tokens")(
                [extra["kp2d_logits"], dense_features])]
    tokens = merge_scales(tapped[16], feats, m.head.token_channels, "tokens16") if fine_tokens \
        else feats
    inputs = {"image": image, "K": K}
    if m.keypoint_input.enabled:
        inputs[KEYPOINTS] = keras.Input((17, 3), name=KEYPOINTS)
        head_inputs.append(inputs[KEYPOINTS])
    markers_list = build_head(m, size, mean)([tokens, K, *head_inputs])
    markers = markers_list[:, -1]
    params = build_markerposer(m, body_model)(markers)
    body = mp.BodyLayer(body_model, name="body")(params["betas"], params["rotmats"],
                                                 params["transl"])
    outputs = {"markers_list": markers_list, "markers": markers, **params,
               "vertices": body["vertices"], "joints": body["joints"],
               "mesh_markers": body["markers"], "h36m17": body["h36m17"],
               "coco17": body["coco17"], **extra}
    if m.keypoint_input.enabled and m.keypoint_input.anchor:
        outputs = KeypointAnchor(size, name="keypoint_anchor")(outputs, inputs[KEYPOINTS], K)
    return keras.Model(inputs, outputs, name="pose_net")


def takes_keypoints(model):
    """Whether a pose model has the external keypoint input (model.keypoint_input)."""
    inputs = model.input
    return isinstance(inputs, dict) and KEYPOINTS in inputs


def count_params(model):
    """dict(total, backbone, head, markerposer): parameters (trainable or not) of each part."""
    parts = {name: model.get_layer(name).count_params()
             for name in ("backbone", "head", "markerposer")}
    return {"total": model.count_params(), **parts}
