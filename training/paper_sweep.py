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
from configs.common_pose import loss_section
from data_pipelines import pipeline
from data_pipelines.synthetic import records
from eval.pose_eval import PoseEvaluator
from models.markerposer import BodyLayer
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
INPUTS = ("features", "K")
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
    variant: str = "paper"     # the paper's head (no keypoint tokens, no lifter)


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
        body = body_model_of(config)
        started = time.time()
        tmp = folder.with_name(f".{folder.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)   # a killed build's leftovers
        tmp.mkdir(parents=True)
        count = pipeline.num_examples(config, "train")   # makes the set on first use
        count = min(count, limit_train) if limit_train else count
        files = records.train_files(data_dir)
        ds = tf.data.TFRecordDataset(files).map(records.parse_example).take(count)
        feats, labels = [], {k: [] for k in TRAIN_LABELS}
        for ex in tqdm(ds.batch(batch), total=math.ceil(count / batch), desc="train features",
                       unit="batch", disable=not progress):
            feats.append(_features(backbone, ex["image"]))
            for k in TRAIN_LABELS:
                labels[k].append(ex[k].numpy())
        train_features = np.concatenate(feats)
        np.save(tmp / "train_features.npy", train_features)
        np.savez(tmp / "train_labels.npz", **{k: np.concatenate(v) for k, v in labels.items()})
        test_config = copy.deepcopy(config)
        test_config.eval.batch_size = batch
        feats, labels = [], {k: [] for k in TEST_LABELS}
        for ex in pipeline.build_dataset(test_config, "test", body_model=body):
            feats.append(_features(backbone, ex["image"]))
            for k in TEST_LABELS:
                labels[k].append(ex[k].numpy())
        test_features = np.concatenate(feats)
        np.save(tmp / "test_features.npy", test_features)
        np.savez(tmp / "test_labels.npz", **{k: _plain(np.concatenate(v))
                                             for k, v in labels.items()})
        io.write_json(tmp / "meta.json", {
            "backbone_sha256": sha, "ckpt": str(ckpt), "data": str(data_dir),
            "train": len(train_features), "test": len(test_features),
            "seconds": round(time.time() - started, 1)})
        tmp.rename(folder)
        return cls(folder)


def release_config(ckpt):
    """The released run's config (body, image size, MarkerPoser, the head's sizes)."""
    return checkpoints.open_checkpoint(ckpt, task="pose")[2]


def head_config(config, head, width, activation):
    """config.model of the release with the sweep cell's head: kind, width, activation (ERA
    degree), the paper's head (no keypoint tokens, no lifter)."""
    if head not in HEADS:
        raise ValueError(f"head {head!r} is unknown; use one of {', '.join(HEADS)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is unknown; use one of "
                         f"{', '.join(ACTIVATIONS)}")
    m = copy.deepcopy(config.model)
    m.head.kind, m.head.width = head, int(width)
    m.head.keypoint_tokens, m.head.lift_hidden = False, 0
    m.activation, degree = ACTIVATIONS[activation]
    m.era = era_section(degree=degree or 2, init="swish", sharing="layer")
    return m


def build_models(config, m, body, feature_shape):
    """(head_model, eval_model): {features, K} -> all marker estimates (B,L,K,3); and -> the
    frozen MarkerPoser's posed body (h36m17, vertices) from the last estimate."""
    size = int(config.data.image_size)
    features = keras.Input(feature_shape, name="features")
    K = keras.Input((3, 3), name="K")
    inputs = {"features": features, "K": K}
    markers_list = build_head(m, size, mean_body(body))([features, K])
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

    def __init__(self, cache, config, body, batch=64):
        self.evaluator = PoseEvaluator(body, config.data.image_size, config.model.init_fill,
                                       config.eval.pelvis, config.eval.vertex_align,
                                       baseline="mean_pose", model_inputs=INPUTS)
        arrays = {"features": cache.test_features, **cache.test}
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
    m = head_config(config, head, width, activation)
    head_model, eval_model = build_models(config, m, body, cache.train_features.shape[1:])
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
    def train_step(features, K, markers, kp2d):
        with tf.GradientTape() as tape:
            markers_list = head_model({"features": tf.cast(features, tf.float32), "K": K},
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
        loss = float(train_step(cache.train_features[idx], cache.train["K"][idx],
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
                     samples=256):
    """The learned ERA functions of a finished run (its `folder`'s final head weights) against
    their initialisation, over the pre-activations of the first `samples` test images
    (pose_era.era.plot); returns the PNG paths."""
    from pose_era.era.plot import plot_era_layers
    weights = Path(folder) / FINAL_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found: the run did not finish (or diverged)")
    m = head_config(config, head, width, activation)
    head_model, _ = build_models(config, m, body, cache.train_features.shape[1:])
    head_model.load_weights(str(weights))
    sample = {"features": tf.cast(cache.test_features[:samples], tf.float32),
              "K": tf.constant(cache.test["K"][:samples])}
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
    return Path(root) / "runs" / (f"{sha256[:16]}_{head}{width}_{activation}_s{seed}_"
                                  f"{protocol.steps}x{protocol.batch}_lr{protocol.lr:g}")


def finish_run(folder):
    """A finished run keeps its final head weights only (its row holds the results)."""
    shutil.rmtree(Path(folder) / "ckpt", ignore_errors=True)
    Path(folder, "state.json").unlink(missing_ok=True)
