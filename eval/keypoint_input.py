"""What a keypoint-fed network (model.keypoint_input) is given when it is evaluated.

config.eval.keypoints chooses (eval/pose_eval.py calls the source on every batch):
  blazepose    BlazePose run on each test image, as the demo runs it on a photo
               (eval.demo.Pipeline.people: the detector and the landmark model on the whole
               image, most confident person; when it finds nobody, the landmark model on the
               square around the crop's person, as the demo's --bbox), its keypoints given by
               the demo's rule (eval.demo.network_keypoints). Honest: the same detector as in
               the demo, on the very images scored. Cached by image name, so a training run's
               repeated validations run BlazePose once per image.
  noisy_truth  the image's true kp2d corrupted by the training noise model
               (data_pipelines.keypoint_noise, config.data.keypoint_noise) with a fixed seed
               per image name: a stand-in where BlazePose's models are not installed. It is
               NOT a detector's output (its errors have exactly the statistics the network was
               trained on), so the evaluator says so on stderr and in its description.
"""
import sys
import zlib

import numpy as np

from data_pipelines import keypoint_noise
from pose_era import geometry

SOURCES = ("blazepose", "noisy_truth")
SEED = 20261207      # noisy_truth: seed = (SEED, crc32 of the image name)


def true_keypoints(batch, body):
    """(B, 17, 3) the batch's true COCO-17 keypoints in crop pixels + labelled (0/1): its kp2d
    where it has any (the training records, COCO, SPIN's `part`), else the projection through K
    of the COCO-17 joints of its true body (betas, pose, transl and `body`, a
    pose_era.body.BodyModel; the synthetic test split's npz stores no 2D: the records' kp2d are
    exactly this projection, data_pipelines/synthetic/scene.py), labelled inside the crop."""
    kp2d = np.asarray(batch["kp2d"], np.float32)
    if (kp2d[..., 2] > 0).any() or body is None:
        return kp2d
    posed = body.from_labels(batch["betas"], batch["pose"], batch["transl"])
    uv = geometry.project(posed["coco17"], np.asarray(batch["K"], np.float32)).numpy()
    size = np.asarray(batch["image"]).shape[1]
    inside = np.all((uv >= 0) & (uv <= size), axis=-1)
    inside &= (np.asarray(batch["has_params"]) > 0)[:, None]
    return np.concatenate([uv, inside[..., None]], axis=-1).astype(np.float32)


class BlazePoseOnImages:
    """images (B,S,S,3) in [0,1], names (B,) -> (B,17,3) the network's keypoint input."""

    description = ("BlazePose's keypoints on each test image (eval/keypoint_input.py: the "
                   "demo's detector, landmarks and seen rule)")

    def __init__(self, blazepose=None):
        from eval.blazepose import BlazePose
        self.blazepose = blazepose if blazepose is not None else BlazePose()
        self.cache = {}
        self.counts = {"images": 0, "detector": 0, "whole_image": 0, "nobody": 0}

    def one(self, rgb):
        """(17, 3) keypoint input of one RGB uint8 square image; also counts where it came from."""
        from eval import demo
        from eval.blazepose import landmarks
        size = rgb.shape[0]
        pipeline = demo.Pipeline(None, size, self.blazepose)
        found, how = pipeline.people(rgb), "detector"
        if not found:
            side = size / demo.ENLARGE        # the person box a crop of this image was cut around
            box = ((size - side) / 2, (size - side) / 2, side, side)
            found, how = [p for p in pipeline.people(rgb, bbox=box) if p[2] is not None], \
                "whole_image"
        self.counts["images"] += 1
        if not found:
            self.counts["nobody"] += 1
            return np.zeros((17, 3), np.float32)
        self.counts[how] += 1
        lm = found[0][2]
        absent = lm.coco17_presence() < landmarks.MIN_PRESENCE
        return demo.network_keypoints(lm.coco17(), absent, np.array([0, 0, size, size],
                                                                    np.float32), size, rgb.shape)

    def __call__(self, batch):
        out = []
        for image, name in zip(np.asarray(batch["image"]), np.asarray(batch["imgname"])):
            key = name.decode() if isinstance(name, bytes) else str(name)
            if key not in self.cache:
                rgb = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
                self.cache[key] = self.one(rgb)
            out.append(self.cache[key])
        return np.stack(out).astype(np.float32)


class NoisyTruth:
    """The true kp2d of each image corrupted by the training noise model, a fixed seed per image
    name (the same keypoints in every evaluation and for any batching)."""

    def __init__(self, noise, image_size, body=None):
        self.noise, self.size, self.body = noise, int(image_size), body
        self.description = ("NOT a detector: the true 2D keypoints corrupted by the training "
                            f"noise model (data.keypoint_noise), seed {SEED} per image name")

    def __call__(self, batch):
        out = []
        for kp2d, name in zip(true_keypoints(batch, self.body), np.asarray(batch["imgname"])):
            key = name if isinstance(name, bytes) else str(name).encode()
            seed = np.array([SEED, zlib.crc32(key)], np.int64)
            out.append(keypoint_noise.corrupt(kp2d, seed, self.noise, self.size).numpy())
        return np.stack(out).astype(np.float32)


def source_for(config, body=None, blazepose=None):
    """The keypoint source of config.eval.keypoints for a keypoint-fed model's config (`body`:
    the body model that poses the true 2D where a split stores none, `true_keypoints`)."""
    kind = config.eval.keypoints
    if kind not in SOURCES:
        raise ValueError(f"eval.keypoints={kind!r}: choose one of {', '.join(SOURCES)}")
    if kind == "blazepose":
        return BlazePoseOnImages(blazepose)
    print("WARNING: the keypoint-fed model is evaluated on the TRUE 2D keypoints corrupted by "
          "its training noise model (eval.keypoints=noisy_truth), not on a detector's: its "
          "numbers are optimistic; eval.keypoints=blazepose is the honest setting",
          file=sys.stderr, flush=True)
    return NoisyTruth(keypoint_noise.KeypointNoise.from_config(config.data.keypoint_noise),
                      config.data.image_size, body)
