"""The ERA supplement's activation sweep (Table 9, Figure 9): the pose head alone, trained on the
frozen backbone of a released model, for each head kind, width, activation and seed.

Why this protocol: the activations differ only in the head, and on 2 CPU cores the backbone's
forward pass costs far more than the head's training. So the backbone of `--ckpt` (the release)
runs once over the synthetic set's training and test images (unaugmented) and its stride-32
feature maps are cached (`FeatureCache`); every run then trains a fresh paper head (no keypoint
tokens, no lifter: models/thundr.py with the block of models/heads.py, every activation behind
the same layer norm) on those features with the CPU recipe's marker losses (markers3d, centroid,
marker distances), and is scored through the release's frozen MarkerPoser and the body model by
the project's one evaluator (eval/pose_eval.py) on the test split, beside the mean body.
The `cpu` variant (Protocol.variant) trains the CPU recipe's head instead, as a second row set:
the paper's head plus keypoint tokens and their lifter (models/keypoint_tokens.py), read from the
release's frozen dense 2D aid, whose tokens are cached beside the features.

A run is reproducible from (head, width, activation, seed, protocol): the seed sets the head's
initialisation (keras.utils.set_random_seed) and the data order (a permutation per epoch drawn
from numpy's generator seeded with (seed, epoch), so a resumed run sees the same batches). Runs
checkpoint every `ckpt_every` steps under the cache and resume there; finished runs are rows of
the sweep's JSON (tools/paper_sweep.py), which a later sweep keeps and skips.
"""
import copy
import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from configs.common import era_section, optimizer_section
from configs.common_pose import loss_section, pose_config
from data_pipelines import pipeline
from data_pipelines.synthetic import records
from eval.pose_eval import PoseEvaluator
from models.markerposer import BodyLayer
from models.keypoint_tokens import KeypointTokens
from models.mean_body import mean_body
from models.pose_net import build_head, build_markerposer
from pose_era import io, losses
from pose_era.body import body_model_of
from training import checkpoints
from training.driver import make_optimizer

# Name in the sweep -> (model.activation, ERA degree): ERA swish-initialised, one parameter set
# per layer, as the supplement's Table 9.
ACTIVATIONS = {"relu": ("relu", None), "gelu": ("gelu", None), "swish": ("swish", None),
               "era2": ("era", 2), "era4": ("era", 4)}
HEADS = ("mixer", "transformer")
LOSS_WEIGHTS = {"markers3d": 1.0, "marker_centroid": 0.2, "marker_distances": 1.0}
# What the head reads, per Protocol.variant: "paper" = Table 8's head on the stride-32 features;
# "cpu" = the CPU recipe's head, which also reads the dense 2D aid's keypoint tokens.
INPUTS = {"paper": ("features", "K"), "cpu": ("features", "K", "keypoint_tokens")}
VARIANTS = tuple(INPUTS)
TOKENS = "keypoint_tokens"     # the cache's subfolder of the release's keypoint tokens
TEST_LABELS = ("K", "j3d", "has_j3d", "betas", "pose", "transl", "has_params", "imgname")
TRAIN_LABELS = ("K", "markers", "kp2d")
FINAL_WEIGHTS = "head.weights.h5"
# A logged loss (mean over log_every steps) this many times the first step's (or a non-finite
# loss) is a diverged run: the first step's is the untrained head's, which training lowers.
EXPLODED = 5.0


@dataclass(frozen=True)
class Protocol:
    """What every run of a sweep shares (rows of different protocols are never pooled)."""
    steps: int = 3000
    batch: int = 64
    lr: float = 1e-3
    warmup: int = 100
    clip_norm: float = 1.0
    eval_every: int = 500
    ckpt_every: int = 500
    log_every: int = 50
    variant: str = "paper"     # a key of INPUTS: the paper's head, or the CPU recipe's


def backbone_sha256(backbone):
    """SHA-256 of a backbone's weights (names and float32 values in order): rows trained on two
    backbones are never averaged together."""
    digest = hashlib.sha256()
    for w in backbone.weights:
        digest.update(w.path.encode())
        digest.update(np.asarray(w.numpy(), np.float32).tobytes())
    return digest.hexdigest()


def _features(backbone, images):
    out = backbone(images, training=False)
    return (out[0] if isinstance(out, (list, tuple)) else out).numpy().astype(np.float16)


def _plain(array):
    """Arrays npz loads without pickle: tf.string batches (object arrays of bytes) as bytes."""
    return array.astype(np.bytes_) if array.dtype == object else array


class FeatureCache:
    """The frozen backbone's feature maps (float16) and the labels the sweep reads, of a
    released pose model's synthetic training and test images, in `root`/<sha[:16]>/."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.sha256 = self.meta["backbone_sha256"]
        self.train_features = np.load(self.folder / "train_features.npy")
        self.test_features = np.load(self.folder / "test_features.npy")
        with np.load(self.folder / "train_labels.npz") as f:
            self.train = {k: f[k] for k in f.files}
        with np.load(self.folder / "test_labels.npz") as f:
            self.test = {k: f[k] for k in f.files}
        self.tokens = _load_tokens(self.folder / TOKENS)

    def arrays(self, split, variant="paper"):
        """{input name: array over the split's examples} of what `variant`'s head reads."""
        features = self.train_features if split == "train" else self.test_features
        labels = self.train if split == "train" else self.test
        out = {"features": features, "K": labels["K"]}
        if "keypoint_tokens" in INPUTS[variant]:
            if self.tokens is None:
                raise FileNotFoundError(f"{self.folder / TOKENS} is missing: build it with "
                                        "FeatureCache.add_keypoint_tokens")
            out["keypoint_tokens"] = self.tokens[split]
        return out

    @classmethod
    def build(cls, ckpt, root, limit_train=0, batch=128, progress=True):
        """The cache of release `ckpt` (workdir or prefix), made on first use (atomically: a
        folder appears complete or not at all). `limit_train` > 0 keeps the first N training
        images (tests)."""
        config, model, _ = checkpoints.restore(ckpt)
        backbone = model.get_layer("backbone")
        sha = backbone_sha256(backbone)
        data_dir = pipeline.synthetic_dir(config)
        name = f"{sha[:16]}_{Path(data_dir).name}" + (f"_first{limit_train}" if limit_train else "")
        folder = Path(root) / name
        if (folder / "meta.json").is_file():
            return cls(folder)
        started = time.time()
        tmp = _fresh_tmp(folder)
        count = pipeline.num_examples(config, "train")   # makes the set on first use
        count = min(count, limit_train) if limit_train else count
        feats = {"train": [], "test": []}
        labels = {"train": {k: [] for k in TRAIN_LABELS}, "test": {k: [] for k in TEST_LABELS}}
        for split, ex in _image_batches(config, count, batch, "features", progress):
            feats[split].append(_features(backbone, ex["image"]))
            for k in labels[split]:
                labels[split][k].append(ex[k].numpy())
        for split in ("train", "test"):
            np.save(tmp / f"{split}_features.npy", np.concatenate(feats[split]))
            np.savez(tmp / f"{split}_labels.npz",
                     **{k: _plain(np.concatenate(v)) for k, v in labels[split].items()})
        io.write_json(tmp / "meta.json", {
            "backbone_sha256": sha, "ckpt": str(ckpt), "data": str(data_dir),
            "train": sum(map(len, feats["train"])), "test": sum(map(len, feats["test"])),
            "seconds": round(time.time() - started, 1)})
        tmp.rename(folder)
        return cls(folder)

    def add_keypoint_tokens(self, batch=128, progress=True):
        """Caches the release's keypoint tokens (its frozen dense 2D aid's, through
        models/keypoint_tokens.py) of the same images, for the `cpu` variant; once
        (atomically), then loads them."""
        folder = self.folder / TOKENS
        if self.tokens is None:
            config, model, _ = checkpoints.restore(self.meta["ckpt"])
            aid = keypoint_token_model(model, self.meta["ckpt"])
            started = time.time()
            tmp = _fresh_tmp(folder)
            tokens = {"train": [], "test": []}
            for split, ex in _image_batches(config, self.meta["train"], batch, "keypoint tokens",
                                            progress):
                tokens[split].append(aid(ex["image"], training=False).numpy().astype(np.float16))
            for split, parts in tokens.items():
                np.save(tmp / f"{split}.npy", np.concatenate(parts))
            io.write_json(tmp / "meta.json", {"seconds": round(time.time() - started, 1)})
            tmp.rename(folder)
            self.tokens = _load_tokens(folder)
        return self


def _load_tokens(folder):
    """{split: cached keypoint tokens} of a complete token folder, else None."""
    if not (Path(folder) / "meta.json").is_file():
        return None
    return {split: np.load(Path(folder) / f"{split}.npy") for split in ("train", "test")}


def _fresh_tmp(folder):
    """The empty temporary sibling a cache folder is built in (a killed build's leftovers
    removed); renamed to `folder` when complete."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _image_batches(config, count, batch, what, progress):
    """("train" | "test", batch) over the images a cache holds, in its order: the first `count`
    training images (unaugmented), then the test split as the evaluator reads it."""
    files = records.train_files(pipeline.synthetic_dir(config))
    ds = tf.data.TFRecordDataset(files).map(records.parse_example).take(count)
    for ex in tqdm(ds.batch(batch), total=math.ceil(count / batch), desc=f"train {what}",
                   unit="batch", disable=not progress):
        yield "train", ex
    test_config = copy.deepcopy(config)
    test_config.eval.batch_size = batch
    for ex in pipeline.build_dataset(test_config, "test", body_model=body_model_of(config)):
        yield "test", ex


def keypoint_token_model(model, ckpt):
    """image -> (B,17,C+4) keypoint tokens of a pose model's dense 2D aid (its heatmap logits
    and the features they are read from), as the CPU recipe's head reads them."""
    try:
        logits, features = (model.get_layer(n).output for n in ("dense2d_logits", "dense2d_conv"))
    except ValueError:
        raise ValueError(f"the cpu variant reads the dense 2D aid's keypoint tokens, and {ckpt} "
                         "has no aid (model.dense2d.enabled=false); use --variant paper") from None
    return keras.Model(model.input["image"], KeypointTokens(name="keypoint_tokens")(
        [logits, features]), name="keypoint_tokens")


def release_config(ckpt):
    """The released run's config (body, image size, MarkerPoser, the head's sizes)."""
    return checkpoints.open_checkpoint(ckpt, task="pose")[2]


def head_config(config, head, width, activation, variant="paper"):
    """config.model of the release with the sweep cell's head: kind, width, activation (ERA
    degree); the paper's head (no keypoint tokens, no lifter), or with variant "cpu" the CPU
    recipe's keypoint tokens and lifter (configs/common_pose.py)."""
    if head not in HEADS:
        raise ValueError(f"head {head!r} is unknown; use one of {', '.join(HEADS)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is unknown; use one of "
                         f"{', '.join(ACTIVATIONS)}")
    m = copy.deepcopy(config.model)
    m.head.kind, m.head.width = head, int(width)
    m.head.keypoint_tokens, m.head.lift_hidden = False, 0
    if variant == "cpu":
        recipe = pose_config("cpu", name="paper_sweep", backbone=m.backbone.name,
                             head_kind=head, width=int(width)).model.head
        m.head.keypoint_tokens, m.head.lift_hidden = recipe.keypoint_tokens, recipe.lift_hidden
    m.activation, degree = ACTIVATIONS[activation]
    m.era = era_section(degree=degree or 2, init="swish", sharing="layer")
    return m


def build_models(config, m, body, arrays):
    """(head_model, eval_model): inputs shaped as `arrays` ({name: array over examples}, in
    INPUTS' order; `FeatureCache.arrays`) -> all marker estimates (B,L,K,3); and -> the frozen
    MarkerPoser's posed body (h36m17, vertices) from the last estimate."""
    size = int(config.data.image_size)
    inputs = {name: keras.Input(a.shape[1:], name=name) for name, a in arrays.items()}
    markers_list = build_head(m, size, mean_body(body))(list(inputs.values()))
    head_model = keras.Model(inputs, markers_list, name="sweep_head")
    markerposer = build_markerposer(config.model, body)
    markerposer.trainable = False
    params = markerposer(markers_list[:, -1])
    posed = BodyLayer(body, name="body")(params["betas"], params["rotmats"], params["transl"])
    eval_model = keras.Model(inputs, {"h36m17": posed["h36m17"], "vertices": posed["vertices"]},
                             name="sweep_eval")
    return head_model, eval_model


def batch_indices(seed, step, batch, n):
    """Indices of training examples of `step`: consecutive slices of one permutation of range(n)
    per epoch, drawn from a generator seeded with (seed, epoch)."""
    start = step * batch
    out, epoch = [], start // n
    while sum(len(o) for o in out) < batch:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        lo = start - epoch * n if not out else 0
        out.append(order[lo:lo + batch - sum(len(o) for o in out)])
        epoch += 1
    return np.concatenate(out)


class Evaluator:
    """The project's one pose evaluator on the cached test split (model and mean body)."""

    def __init__(self, cache, config, body, variant="paper", batch=64):
        self.evaluator = PoseEvaluator(body, config.data.image_size, config.model.init_fill,
                                       config.eval.pelvis, config.eval.vertex_align,
                                       baseline="mean_pose", model_inputs=INPUTS[variant])
        arrays = {**cache.test, **cache.arrays("test", variant)}
        self.dataset = tf.data.Dataset.from_tensor_slices(arrays).batch(batch)

    def __call__(self, eval_model):
        """{mpjpe, pa_mpjpe, mpvpe} of the model, mm."""
        _, result = self.evaluator.per_sample(eval_model, self.dataset)
        return {m: (None if v is None else round(float(np.mean(v)), 2))
                for m, v in result["model"].items()}

    def mean_body(self):
        """The same metrics of the mean body (the evaluator's mean_pose baseline)."""
        return self(lambda inputs, training: self.evaluator.mean_pose(inputs["K"]))


def train_run(cache, config, body, evaluator, head, width, activation, seed, protocol,
              run_dir, progress=True):
    """Trains one cell's head (resuming from `run_dir`'s checkpoint) and returns its row fields:
    the test metrics (None when diverged), diverged, steps reached, seconds, the curve."""
    p = protocol
    keras.utils.set_random_seed(seed)
    m = head_config(config, head, width, activation, p.variant)
    train = cache.arrays("train", p.variant)
    head_model, eval_model = build_models(config, m, body, train)
    opt_config = optimizer_section(name="adam", lr=p.lr, schedule="cosine",
                                   warmup_steps=p.warmup, clip_norm=p.clip_norm)
    optimizer = make_optimizer(opt_config, None, p.steps, "float32")
    loss_config = loss_section()
    for term in losses.TERMS:
        loss_config[term] = LOSS_WEIGHTS.get(term, 0.0)
    size = int(config.data.image_size)
    variables = head_model.trainable_variables
    optimizer.build(variables)

    @tf.function(reduce_retracing=True)
    def train_step(inputs, markers, kp2d):
        K = inputs["K"]
        with tf.GradientTape() as tape:
            markers_list = head_model({k: tf.cast(v, tf.float32) for k, v in inputs.items()},
                                      training=True)
            outputs = {"markers_list": markers_list, "markers": markers_list[:, -1]}
            targets = {"markers": markers, "kp2d": kp2d,
                       "has_markers": tf.ones_like(K[:, 0, 0])}
            per_example, _ = losses.pose_loss(outputs, targets, K, size, body, loss_config)
            loss = tf.reduce_mean(per_example)
        grads, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), p.clip_norm)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    run_dir = Path(run_dir)
    checkpoint = tf.train.Checkpoint(head=head_model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, str(run_dir / "ckpt"), max_to_keep=1)
    state = {"curve": [], "seconds": 0.0, "first_loss": None}
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        state = json.loads((run_dir / "state.json").read_text())
    step = int(optimizer.iterations.numpy())
    n = len(cache.train_features)
    started, window, diverged = time.time() - state["seconds"], [], False
    bar = tqdm(total=p.steps, initial=step, desc=f"{head}-{width} {activation} s{seed}",
               unit="step", disable=not progress, leave=False)
    while step < p.steps:
        idx = batch_indices(seed, step, p.batch, n)
        loss = float(train_step({k: v[idx] for k, v in train.items()},
                                cache.train["markers"][idx], cache.train["kp2d"][idx]))
        step += 1
        bar.update(1)
        window.append(loss)
        state["first_loss"] = state["first_loss"] or loss
        if not math.isfinite(loss):
            diverged = True
            break
        due_eval = step % p.eval_every == 0 or step == p.steps
        due_ckpt = step % p.ckpt_every == 0 and step < p.steps
        if step % p.log_every and not due_eval and not due_ckpt:
            continue
        mean_loss = float(np.mean(window))
        window = []
        if mean_loss > EXPLODED * state["first_loss"]:
            diverged = True
            break
        point = {"step": step, "loss": round(mean_loss, 5)}
        if due_eval:
            point.update(evaluator(eval_model))
            bar.set_postfix(pa=point["pa_mpjpe"])
        state["curve"].append(point)
        if due_ckpt:
            state["seconds"] = time.time() - started
            manager.save(checkpoint_number=step)
            io.write_json(run_dir / "state.json", state)
    bar.close()
    if not diverged:     # for the learned-ERA plots (tools/paper_claims.py)
        io.write_via_path(run_dir / FINAL_WEIGHTS, head_model.save_weights)
    metrics = (dict.fromkeys(("mpjpe", "pa_mpjpe", "mpvpe")) if diverged
               else {k: state["curve"][-1][k] for k in ("mpjpe", "pa_mpjpe", "mpvpe")})
    return {**metrics, "diverged": diverged, "steps": step,
            "seconds": round(time.time() - started, 1), "curve": state["curve"],
            "head_params": int(sum(np.prod(v.shape) for v in variables)),
            "protocol": asdict(p)}


def plot_learned_era(cache, config, body, head, width, activation, folder, out_dir,
                     variant="paper", samples=256):
    """The learned ERA functions of a finished run (its `folder`'s final head weights) against
    their initialisation, over the pre-activations of the first `samples` test images
    (pose_era.era.plot); returns the PNG paths."""
    from pose_era.era.plot import plot_era_layers
    weights = Path(folder) / FINAL_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found: the run did not finish (or diverged)")
    m = head_config(config, head, width, activation, variant)
    test = cache.arrays("test", variant)
    head_model, _ = build_models(config, m, body, test)
    head_model.load_weights(str(weights))
    sample = {k: tf.cast(v[:samples], tf.float32) for k, v in test.items()}
    return plot_era_layers(head_model, sample, out_dir)


def run_key(head, width, activation, seed, sha256, protocol):
    """What makes two runs the same: the cell, the seed, the backbone and the protocol."""
    protocol = asdict(protocol) if isinstance(protocol, Protocol) else protocol
    return (head, int(width), activation, int(seed), sha256, tuple(sorted(protocol.items())))


def row_key(row):
    return run_key(row["head"], row["width"], row["activation"], row["seed"],
                   row["backbone_sha256"], row["protocol"])


def run_dir(root, sha256, head, width, activation, seed, protocol):
    """The folder of one unfinished run's checkpoint and curve under the cache `root`."""
    variant = "" if protocol.variant == "paper" else f"_{protocol.variant}"
    return Path(root) / "runs" / (f"{sha256[:16]}_{head}{width}_{activation}_s{seed}_"
                                  f"{protocol.steps}x{protocol.batch}_lr{protocol.lr:g}{variant}")


def finish_run(folder):
    """A finished run keeps its final head weights only (its row holds the results)."""
    shutil.rmtree(Path(folder) / "ckpt", ignore_errors=True)
    Path(folder, "state.json").unlink(missing_ok=True)
