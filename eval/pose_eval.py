"""The one pose evaluator: MPJPE, PA-MPJPE and MPVPE (eval/metrics.py, SPIN's conventions) of a
model, and of the mean-body baseline, over batches of schema examples.

Why one: the validation during training (training/tasks/pose.py) and `python -m eval.h36m` must
report the same numbers for the same images, so both run this class on
`pipeline.build_dataset(config, "val" | "test")`. The options come from config.eval (pelvis,
vertex_align, baseline); the CLI overrides them from its flags. A keypoint-fed model
(model.keypoint_input) is also given 2D keypoints on every batch, from the source
config.eval.keypoints names (eval/keypoint_input.py: BlazePose on the image by default).
"""
import sys

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from eval import metrics, report
from models.mean_body import mean_body
from models.thundr import initial_markers

BASELINES = ("mean_pose",)
MODEL_INPUTS = ("image", "K")


class MeanPoseBaseline:
    """The mean-pose baseline: the same body for every image, placed by the camera alone.

    The mean body (mean shape, identity joint rotations, upright, facing the camera) placed
    where the network's initial guess M_0 puts it (models/thundr.py: centred on the crop's
    central ray, filling model.init_fill of it). After pelvis alignment only its pose counts.
    """

    def __init__(self, body, image_size, init_fill):
        mean = mean_body(body)
        rot = np.tile(np.eye(3, dtype=np.float32), (1, body.num_joints, 1, 1))
        rot[0, 0] = mean["root"]
        rest = body(np.zeros((1, body.num_betas), np.float32), rot, mean["transl_offset"][None])
        self.rest = {k: rest[k].numpy() for k in ("h36m17", "vertices")}  # centred on the box
        self.extent = mean["extent"]
        self.image_size = int(image_size)
        self.fill = float(init_fill)

    def __call__(self, K):
        """K (B,3,3) crop intrinsics -> dict h36m17 (B,17,3), vertices (B,V,3), metres."""
        centre = np.asarray(initial_markers(tf.cast(K, tf.float32), self.image_size,
                                            np.zeros((1, 3), np.float32), self.extent,
                                            self.fill))  # (B,1,3)
        return {k: v + centre for k, v in self.rest.items()}


class PoseEvaluator:
    """Per-sample errors (mm) of a pose model (and a baseline) over batched schema examples.

    The model is called on the batch's `model_inputs` (the pose network's image and K; the
    paper sweep's head reads cached backbone features instead of the image, training/
    paper_sweep.py). Samples without valid 3D joints are skipped; MPVPE exists only when every evaluated sample
    has ground-truth body parameters (its mesh is posed by the same body model). `keypoints`:
    for a keypoint-fed model, a callable () -> source, a source being batch -> (B,17,3) keypoint
    input with a `description` (eval/keypoint_input.py); made on first use.
    """

    def __init__(self, body, image_size, init_fill, pelvis="spin", vertex_align="pelvis",
                 baseline="", model_inputs=MODEL_INPUTS, keypoints=None):
        if baseline and baseline not in BASELINES:
            raise ValueError(f"eval.baseline={baseline!r}: choose '' (none) or "
                             f"{', '.join(BASELINES)}")
        metrics.check_options(pelvis, vertex_align)
        self.body, self.model_inputs = body, tuple(model_inputs)
        self.pelvis, self.vertex_align, self.baseline = pelvis, vertex_align, baseline
        self.rows = ["model"] + ([baseline] if baseline else [])
        self.mean_pose = MeanPoseBaseline(body, image_size, init_fill) if baseline else None
        self._make_keypoints, self._keypoints = keypoints, None

    @classmethod
    def from_config(cls, config, body):
        """The evaluator of config.eval's options for the pose config's image size and M_0
        (and, for a keypoint-fed model, config.eval.keypoints' source)."""
        keypoints = None
        if config.model.keypoint_input.enabled:
            def keypoints():
                from eval.keypoint_input import source_for
                return source_for(config, body)
        return cls(body, config.data.image_size, config.model.init_fill, config.eval.pelvis,
                   config.eval.vertex_align, config.eval.baseline, keypoints=keypoints)

    @property
    def keypoint_source(self):
        """The keypoint source of a keypoint-fed model (made on first use), else None."""
        if self._keypoints is None and self._make_keypoints is not None:
            self._keypoints = self._make_keypoints()
        return self._keypoints

    def model_inputs_of(self, batch):
        """The model's inputs of a batch of schema examples (keypoints added when it takes
        them)."""
        inputs = {k: batch[k] for k in self.model_inputs}
        if self.keypoint_source is not None:
            inputs["keypoints"] = tf.constant(self.keypoint_source(batch))
        return inputs

    def _errors(self, pred, gt_joints, gt_mesh):
        out = {"mpjpe": metrics.mpjpe(pred["h36m17"], gt_joints, self.pelvis),
               "pa_mpjpe": metrics.pa_mpjpe(pred["h36m17"], gt_joints)}
        if gt_mesh is not None:
            out["mpvpe"] = metrics.mpvpe(pred["vertices"], gt_mesh["vertices"], self.vertex_align,
                                         metrics.pelvis_of(pred["h36m17"], self.pelvis),
                                         metrics.pelvis_of(gt_mesh["h36m17"], self.pelvis))
        return out

    def per_sample(self, model, dataset, total=None, progress=False):
        """(imgnames, {row: {metric: (N,) mm or None}}) over every batch of `dataset`."""
        errors = {r: {m: [] for m in report.METRICS} for r in self.rows}
        names, all_have_params = [], True
        batches = tqdm(dataset, total=total, desc="eval", unit="batch", file=sys.stderr,
                       disable=not progress)
        for batch in batches:
            keep = batch["has_j3d"].numpy() > 0
            if not keep.any():
                continue
            # Eager: the convolutions dominate, and a graph would be traced again for the last,
            # smaller batch (seconds of tracing for a few milliseconds of Python overhead saved).
            preds = {"model": model(self.model_inputs_of(batch), training=False)}
            if self.baseline:
                preds[self.baseline] = self.mean_pose(batch["K"])
            gt_joints = batch["j3d"].numpy()[keep]
            all_have_params &= bool((batch["has_params"].numpy()[keep] > 0).all())
            gt_mesh = None
            if all_have_params:
                posed = self.body.from_labels(batch["betas"], batch["pose"], batch["transl"])
                gt_mesh = {k: posed[k].numpy()[keep] for k in ("vertices", "h36m17")}
            for row in self.rows:
                pred = {k: np.asarray(preds[row][k])[keep] for k in ("h36m17", "vertices")}
                for m, v in self._errors(pred, gt_joints, gt_mesh).items():
                    errors[row][m].append(v)
            names += [n.decode() for n in batch["imgname"].numpy()[keep]]
        result = {r: {m: (np.concatenate(v) if v and (m != "mpvpe" or all_have_params)
                          else None) for m, v in errors[r].items()} for r in self.rows}
        return names, result

    def means(self, model, dataset):
        """{metric: mean mm} of the model, plus {baseline/metric} when a baseline is set; {} when
        no sample has valid 3D joints (e.g. a 2D-only validation source)."""
        names, result = self.per_sample(model, dataset)
        if not names:
            return {}
        out = {}
        for row, errors in result.items():
            prefix = "" if row == "model" else f"{row}/"
            out.update({f"{prefix}{m}": float(np.mean(v)) for m, v in errors.items()
                        if v is not None})
        return out
