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


@functools.lru_cache(maxsize=1)
def _maker():
    return SceneMaker(anny_body(), image_size=SIZE)


def render_at(ex, root, K, height, width):
    """Scene `ex`'s body (its betas and pose) with its root joint moved to `root` (camera
    frame, metres), rendered with camera K at width x height in the scene maker's look over
    grey: (rgb uint8, the body's outputs as NumPy arrays)."""
    from data_pipelines.synthetic import sampler
    from data_pipelines.synthetic.scene import composite
    from pose_era import renderer
    body, maker = anny_body(), _maker()
    rest_root = body.rest_joints(ex["betas"][None])[0, maker.root].numpy()
    transl = (np.asarray(root, np.float32) - rest_root)[None]
    out = {k: v.numpy()[0] for k, v in body.from_labels(ex["betas"][None], ex["pose"][None],
                                                        transl).items()}
    frags = renderer.rasterize(out["vertices"], body.faces, K, height, width)
    look = np.random.default_rng(0)
    render = renderer.shade(out["vertices"], body.faces, frags,
                            colors=sampler.sample_appearance(maker.regions, look),
                            **sampler.sample_lighting(look))
    return composite(render, np.full((height, width, 3), 110, np.uint8), look), out


@functools.lru_cache(maxsize=1)
def released_pipeline():
    """The demo's pipeline (eval.demo.Pipeline: BlazePose, the released network, the fit with
    its defaults) on the released model pretrained/mixer_64_synth (the Anny body)."""
    from eval import demo
    from eval.blazepose import BlazePose
    from eval.fitting import Fitter
    from training import checkpoints
    config, model, _ = checkpoints.restore("pretrained/mixer_64_synth")
    size = int(config.data.image_size)
    return demo.Pipeline(model, size, BlazePose(), Fitter(anny_body(), size))
