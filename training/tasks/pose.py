"""The pose task: THUNDR-style ERA network (models/pose_net.py) trained on contract examples.

Plugs the network, the tf.data pipeline (data_pipelines/pipeline.py), the losses
(pose_era/losses.py) and the metrics (eval/metrics.py) into the training driver. Examples arrive
as the schema of docs/contracts.md; the model reads {image, K}, the losses read the rest.
"""
import functools

import numpy as np
import tensorflow as tf

from data_pipelines import pipeline
from eval import metrics
from models.pose_net import build_pose_model, count_params  # noqa: F401  (driver's --dry_run)
from pose_era import losses
from pose_era.body import BodyModel, default_body_model_path

MODEL_INPUTS = ("image", "K")


@functools.lru_cache(maxsize=4)
def _load_body(path, num_markers):
    return BodyModel.load(path or default_body_model_path(num_markers=num_markers))


def body_model(config):
    """The body model of config.body.path ("" = the cached Anny model)."""
    return _load_body(str(config.body.path or ""), int(config.model.num_markers))


def build_model(config):
    model = build_pose_model(config, body_model(config))
    # compute_loss sees only the model: keep what it needs beside it.
    model.pose_setup = dict(body=body_model(config), loss=config.loss,
                            image_size=int(config.data.image_size))
    return model


def _split(example):
    inputs = {k: example[k] for k in MODEL_INPUTS}
    targets = {k: v for k, v in example.items() if k not in MODEL_INPUTS}
    return inputs, targets


def train_dataset(config, input_context=None):
    return pipeline.build_dataset(config, "train", input_context, body_model(config)).map(_split)


def eval_dataset(config):
    return pipeline.build_dataset(config, "val", body_model=body_model(config)).map(_split)


def train_size(config):
    return pipeline.num_examples(config, "train")


def compute_loss(model, inputs, targets, training):
    setup = model.pose_setup
    outputs = model(inputs, training=training)
    return losses.pose_loss(outputs, targets, inputs["K"], setup["image_size"], setup["body"],
                            setup["loss"])


def regularized_weights(model):
    return [w for w in model.trainable_weights if w.path.endswith("kernel")]


def evaluate(model, dataset):
    """MPJPE / PA-MPJPE (mm, SPIN's 14 joints from H36M-17) over the validation slice."""
    errors = {"mpjpe": [], "pa_mpjpe": []}
    for inputs, targets in dataset:
        outputs = model(inputs, training=False)
        has = targets["has_j3d"].numpy() > 0
        if not has.any():
            continue
        pred = outputs["h36m17"].numpy()[has]
        true = targets["j3d"].numpy()[has]
        errors["mpjpe"].append(metrics.mpjpe(pred, true))
        errors["pa_mpjpe"].append(metrics.pa_mpjpe(pred, true))
    if not errors["mpjpe"]:
        return {}
    return {k: float(np.mean(np.concatenate(v))) for k, v in errors.items()}


def summarize(model, config, step, writer):
    """Every train.image_every steps: a validation image with the predicted mesh drawn on it."""
    every = int(config.train.get("image_every", 0) or 0)
    if not every or step % every:
        return
    from pose_era import renderer  # rendering is optional for training

    inputs, _ = next(iter(eval_dataset(config).take(1)))
    outputs = model(inputs, training=False)
    image = inputs["image"][0].numpy()
    overlay = renderer.overlay_mesh(image, outputs["vertices"][0].numpy(),
                                    body_model(config).faces, inputs["K"][0].numpy())
    with writer.as_default(step=step):
        tf.summary.image("val/prediction", overlay[None].astype(np.float32), max_outputs=1)
