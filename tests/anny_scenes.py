"""Rendered synthetic scenes of the Anny body (data_pipelines/synthetic/scene.py), made once per
test session: the only "photos" the BlazePose, fitting and demo tests use (ground truth known)."""
import functools

import cv2
import numpy as np

from data_pipelines.synthetic.scene import SceneMaker, example_seed
from pose_era.body import BodyModel, default_body_model_path

SIZE = 480


@functools.lru_cache(maxsize=1)
def anny_body():
    return BodyModel.load(default_body_model_path())


@functools.lru_cache(maxsize=2)
def scenes(n=8, seed=0):
    """n test-split examples (dicts of SceneMaker.make) with `rgb` (uint8) added."""
    examples = SceneMaker(anny_body(), image_size=SIZE).make(
        [example_seed(seed, "test", i) for i in range(n)], [str(i) for i in range(n)])
    for ex in examples:
        ex["rgb"] = cv2.imdecode(np.frombuffer(ex["jpeg"], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    return tuple(examples)
