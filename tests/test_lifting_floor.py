"""tools/lifting_floor.py: the lifter trained alone on true 2D keypoints beats the mean body, and
noisier keypoints give a worse floor (tiny stick-figure bodies, a short run)."""
import numpy as np
import tensorflow as tf

from models.markerposer_pretrain import sample_bodies
from models.mean_body import mean_body
from pose_era import geometry
from tests.tiny_body import tiny_body_model
from tools import lifting_floor

SIZE = 64


def labels(body, n):
    bodies = sample_bodies(body, n, tf.random.Generator.from_seed(3), depth=(3.0, 4.0))
    f = 0.8 * SIZE * 3.5 / 1.8
    K = np.tile(np.float32([[f, 0, SIZE / 2], [0, f, SIZE / 2], [0, 0, 1]]), (n, 1, 1))
    posed = body(bodies["betas"], bodies["rotmats"], bodies["transl"])
    uv = geometry.project(posed["coco17"], tf.constant(K)).numpy()
    kp2d = np.concatenate([uv, np.full(uv.shape[:2] + (1,), 2.0)], -1)
    return K, kp2d.astype(np.float32), bodies["markers"].numpy()


def test_lifting_true_keypoints_beats_the_mean_body_and_noise_costs():
    body = tiny_body_model(num_markers=16)
    K, kp2d, markers = labels(body, 1200)
    rest = mean_body(body)["markers"]
    clean, noisy = (lifting_floor.floor(K, kp2d, markers, SIZE, rest, noise, steps=300,
                                        hidden=64, held_out=256) for noise in (0.0, 6.0))
    assert clean["procrustes"] < 0.8 * clean["mean_body"], clean
    assert clean["procrustes"] < noisy["procrustes"], (clean, noisy)


def test_a_folder_that_is_not_a_synthetic_set_is_one_line_and_exit_2(tmp_path, capsys):
    assert lifting_floor.main(["--data", str(tmp_path)]) == 2
    assert "is not a synthetic dataset folder" in capsys.readouterr().err
