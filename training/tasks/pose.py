"""The pose task: THUNDR-style ERA network (models/pose_net.py) trained on contract examples.

Plugs the network, the tf.data pipeline (data_pipelines/pipeline.py), the losses
(pose_era/losses.py) and the one pose evaluator (eval/pose_eval.py) into the training driver.
Examples arrive as the schema of docs/contracts.md; the model reads {image, K} (and, with
model.keypoint_input, `keypoints`: in training the true kp2d corrupted by
config.data.keypoint_noise, in evaluation what config.eval.keypoints names), the losses the
rest. The task owns the body model of config.body.path for all of them.
"""
import numpy as np
import tensorflow as tf

from data_pipelines import pipeline
from data_pipelines.keypoint_noise import KeypointNoise
from eval.pose_eval import MODEL_INPUTS, PoseEvaluator
from models.pose_net import KEYPOINTS, build_pose_model, count_params
from pose_era import losses, renderer
from pose_era.body import body_model_of
from training.tasks.base import Task


def _split(example):
    keys = MODEL_INPUTS + (KEYPOINTS,) * (KEYPOINTS in example)
    inputs = {k: example[k] for k in keys}
    targets = {k: v for k, v in example.items() if k not in keys}
    return inputs, targets


class PoseTask(Task):
    def __init__(self, config):
        super().__init__(config)
        self.body = body_model_of(config)
        self.evaluator = PoseEvaluator.from_config(config, self.body)
        self.image_size = int(config.data.image_size)

    def build_model(self):
        return build_pose_model(self.config, self.body)

    def train_dataset(self, input_context=None):
        noise = (KeypointNoise.from_config(self.config.data.keypoint_noise)
                 if self.config.model.keypoint_input.enabled else None)
        return pipeline.build_dataset(self.config, "train", input_context, self.body,
                                      keypoints=noise).map(_split)

    def eval_dataset(self):
        """Batched schema examples of the validation slice (the evaluator splits them)."""
        return pipeline.build_dataset(self.config, "val", body_model=self.body)

    def train_size(self):
        return pipeline.num_examples(self.config, "train")

    def compute_loss(self, model, inputs, targets, training):
        outputs = model(inputs, training=training)
        return losses.pose_loss(outputs, targets, inputs["K"], self.image_size, self.body,
                                self.config.loss)

    def regularized_weights(self, model):
        return [w for w in model.trainable_weights if w.path.endswith("kernel")]

    def evaluate(self, model, dataset):
        """MPJPE / PA-MPJPE / MPVPE (mm, SPIN's conventions; config.eval's options) over the
        validation slice, and the baseline's when config.eval.baseline names one."""
        return self.evaluator.means(model, dataset)

    def count_params(self, model):
        return count_params(model)

    def summarize(self, model, step, writer):
        """Every train.image_every steps: a validation image with the predicted mesh drawn on it."""
        every = int(self.config.train.image_every)
        if not every or step % every:
            return
        batch = next(iter(self.eval_dataset().take(1)))
        outputs = model(self.evaluator.model_inputs_of(batch), training=False)
        image = batch["image"][0].numpy()
        overlay = renderer.overlay_mesh(image, outputs["vertices"][0].numpy(), self.body.faces,
                                        batch["K"][0].numpy())
        with writer.as_default(step=step):
            tf.summary.image("val/prediction", overlay[None].astype(np.float32), max_outputs=1)
