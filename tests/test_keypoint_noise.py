"""The training noise of a keypoint-fed network (data_pipelines/keypoint_noise.py): each part of
the model against its definition, the estimator recovering known parameters, and the training
pipeline carrying the keypoints."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import keypoint_noise as kn
from pose_era import constants

SIZE = 160


def body_kp2d(rng, n):
    """(n, 17, 3) plausible keypoints: a 100 px stick figure at a random place, all labelled."""
    base = np.array([[0, -50], [-3, -53], [3, -53], [-7, -51], [7, -51], [-15, -35], [15, -35],
                     [-20, -15], [20, -15], [-22, 5], [22, 5], [-9, 5], [9, 5], [-10, 28],
                     [10, 28], [-10, 50], [10, 50]], np.float32)
    base[:, 0] *= -1          # the person faces the camera: its left on the image's right
    centre = rng.uniform(65, 95, (n, 1, 2))
    uv = base[None] + centre
    return np.concatenate([uv, np.ones((n, 17, 1))], -1).astype(np.float32)


def corrupt_many(kp2d, noise, seed=0):
    return np.stack([kn.corrupt(k, [seed, i], noise, SIZE).numpy()
                     for i, k in enumerate(kp2d)])


def test_without_noise_the_input_is_the_truth_normalised_and_absent_outside_the_crop():
    kp = body_kp2d(np.random.default_rng(0), 1)[0]
    kp[3, 2] = 0.0                       # not labelled
    kp[4, :2] = [-3.0, 40.0]             # outside the crop
    got = kn.corrupt(kp, [1, 2], kn.KeypointNoise(sigma=(0.0,) * 17), SIZE).numpy()
    given = np.ones(17, bool)
    given[[3, 4]] = False
    np.testing.assert_array_equal(got[:, 2], given)
    np.testing.assert_allclose(got[given, :2], kp[given, :2] / SIZE, rtol=1e-6)
    np.testing.assert_array_equal(got[~given, :2], 0.0)


def test_mirror_exchanges_every_left_right_pair_and_missed_gives_nothing():
    kp = body_kp2d(np.random.default_rng(1), 1)[0]
    mirrored = kn.corrupt(kp, [0, 0], kn.KeypointNoise(sigma=(0.0,) * 17, mirror=1.0),
                          SIZE).numpy()
    np.testing.assert_allclose(mirrored[:, :2] * SIZE,
                               kp[list(constants.COCO17_FLIP_PERM), :2], rtol=1e-5)
    missed = kn.corrupt(kp, [0, 0], kn.KeypointNoise(missed=1.0), SIZE).numpy()
    np.testing.assert_array_equal(missed, 0.0)


def test_the_statistics_are_the_parameters():
    """2,000 people: Gaussian error of sigma x size per coordinate, drops, swaps, mirrors and
    the missed rate at their rates (binomial tolerances), measured here directly against the
    truth (no gross errors, so every error is Gaussian)."""
    rng = np.random.default_rng(2)
    n = 2000
    kp = body_kp2d(rng, n)
    sigma = tuple(np.linspace(0.01, 0.04, 17))
    drop = tuple([0.0] * 7 + [0.3] * 4 + [0.0] * 6)
    noise = kn.KeypointNoise(sigma=sigma, drop=drop, mirror=0.1, missed=0.05)
    got = corrupt_many(kp, noise)
    size = np.ptp(kp[:, :, :2], axis=1).max(-1)
    missed = got[..., 2].sum(-1) == 0
    assert abs(missed.mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / n)
    flip = list(constants.COCO17_FLIP_PERM)
    d_same = np.linalg.norm(got[..., :2] * SIZE - kp[..., :2], axis=-1).mean(-1)
    d_flip = np.linalg.norm(got[..., :2] * SIZE - kp[:, flip, :2], axis=-1).mean(-1)
    mirrored = (d_flip < d_same) & ~missed
    assert abs(mirrored.sum() / (~missed).sum() - 0.1) < 4 * np.sqrt(0.09 / n)
    truth = np.where(mirrored[:, None, None], kp[:, flip], kp)
    keep = ~missed
    given = got[keep, :, 2] > 0
    dropped = 1 - given.mean(0)
    np.testing.assert_allclose(dropped, drop, atol=4 * np.sqrt(0.3 * 0.7 / n))
    err = (got[keep, :, :2] * SIZE - truth[keep, :, :2]) / size[keep, None, None]
    for k in range(17):
        e = err[:, k][given[:, k]]
        np.testing.assert_allclose(e.std(0), sigma[k], rtol=0.08)
        assert np.abs(e.mean(0)).max() < 4 * sigma[k] / np.sqrt(len(e))


def test_estimate_recovers_the_parameters_it_is_given():
    """Round trip: keypoints corrupted with known parameters, then `estimate` on them (as the
    measurement tool does on BlazePose's output) gives the parameters back."""
    rng = np.random.default_rng(3)
    n = 3000
    kp = body_kp2d(rng, n)
    noise = kn.KeypointNoise(sigma=(0.025,) * 17, drop=tuple([0.0] * 7 + [0.2] * 4 + [0.0] * 6),
                             gross=0.02, gross_sigma=0.4, swap=0.02, mirror=0.05, missed=0.0)
    got = corrupt_many(kp, noise, seed=4)
    size = np.ptp(kp[:, :, :2], axis=1).max(-1)
    est = kn.estimate(got[..., :2] * SIZE, got[..., 2] > 0, kp[..., :2], kp[..., 2] > 0, size)
    assert abs(est["mirror"] - 0.05) < 0.015
    assert abs(est["swap"] - 0.02) < 0.01
    assert abs(est["gross"] - 0.02) < 0.008
    np.testing.assert_allclose(est["drop"], noise.drop, atol=0.03)
    # Gross errors under the 0.15 cut count as core ones: sigma is estimated a little high.
    np.testing.assert_allclose(est["sigma"], 0.025, rtol=0.15)
    assert est["counts"]["people"] == n == est["counts"]["found"]


def test_config_section_is_checked():
    from configs.common_pose import keypoint_noise_section
    section = keypoint_noise_section()
    noise = kn.KeypointNoise.from_config(section)
    assert len(noise.sigma) == 17 and noise.mirror == section.mirror
    section.sigma = (0.1, 0.2)
    with pytest.raises(ValueError, match="one per COCO-17 keypoint"):
        kn.KeypointNoise.from_config(section)


def test_the_training_pipeline_gives_reproducible_keypoints_that_follow_the_augmentation(tmp_path):
    """The tiny synthetic set through build_dataset with the noise: every batch has keypoints
    (B, 17, 3), given only where kp2d is labelled, within a few sigma of the augmented kp2d;
    the same seed gives the same keypoints."""
    from data_pipelines import pipeline
    from pose_era.body import body_model_of
    from tests.tiny_pose_workdir import tiny_overrides
    from training import config as config_lib
    config = config_lib.load_config("mixer_64:cpu,kpin")
    config_lib.apply_overrides(config, tiny_overrides(tmp_path) + [
        "data.synth_train=8", "data.synth_test=4", "train.batch_size=4",
        "data.shuffle_buffer=8"])
    noise = kn.KeypointNoise.from_config(config.data.keypoint_noise)
    noise = dataclasses.replace(noise, gross=0.0, mirror=0.0, swap=0.0, missed=0.0,
                                image_swap=0.0)
    body = body_model_of(config)
    batches = [next(iter(pipeline.build_dataset(config, "train", body_model=body,
                                                keypoints=noise))) for _ in range(2)]
    a, b = (x["keypoints"].numpy() for x in batches)
    np.testing.assert_array_equal(a, b)
    kp2d = batches[0]["kp2d"].numpy()
    size = config.data.image_size
    assert a.shape == (4, 17, 3)
    assert not np.any((a[..., 2] > 0) & (kp2d[..., 2] == 0))
    given = a[..., 2] > 0
    assert given.mean() > 0.5
    person = np.array([np.ptp(k[k[:, 2] > 0, :2], axis=0).max() for k in kp2d])
    err = np.linalg.norm(a[..., :2] * size - kp2d[..., :2], axis=-1) / person[:, None]
    assert err[given].max() < 5 * max(noise.sigma) * np.sqrt(2)
    plain = next(iter(pipeline.build_dataset(config, "train", body_model=body)))
    assert "keypoints" not in plain
    swapped = next(iter(pipeline.build_dataset(
        config, "train", body_model=body, keypoints=dataclasses.replace(noise, image_swap=1.0))))
    np.testing.assert_array_equal(swapped["keypoints"], a)
    np.testing.assert_array_equal(swapped["image"], np.roll(batches[0]["image"], -1, axis=0))


def test_person_size_is_the_labelled_boxs_longer_side():
    kp = np.zeros((17, 3), np.float32)
    kp[:3] = [[10, 20, 1], [50, 100, 1], [30, 60, 1]]
    kp[3] = [500, 500, 0]
    assert float(kn.person_size(tf.constant(kp), 5.0)) == 80.0
    assert float(kn.person_size(tf.zeros((17, 3)), 20.0)) == 20.0


def test_swap_images_gives_some_examples_their_neighbours_image_and_keeps_the_labels():
    images = tf.reshape(tf.range(6, dtype=tf.float32), (6, 1, 1, 1)) * tf.ones((6, 2, 2, 3))
    batch = {"image": images, "kp2d": tf.random.uniform((6, 17, 3), seed=1)}
    never = kn.swap_images(batch, [0, 1], kn.KeypointNoise())
    np.testing.assert_array_equal(never["image"], images)
    always = kn.swap_images(batch, [0, 1], kn.KeypointNoise(image_swap=1.0))
    np.testing.assert_array_equal(always["image"][:, 0, 0, 0], [1, 2, 3, 4, 5, 0])
    np.testing.assert_array_equal(always["kp2d"], batch["kp2d"])
    big = {"image": tf.reshape(tf.range(4000, dtype=tf.float32), (4000, 1, 1, 1))}
    some = kn.swap_images(big, [3, 4], kn.KeypointNoise(image_swap=0.3))["image"].numpy()
    swapped = some[:, 0, 0, 0] != np.arange(4000)
    assert 0.27 < swapped.mean() < 0.33
    again = kn.swap_images(big, [3, 4], kn.KeypointNoise(image_swap=0.3))["image"].numpy()
    np.testing.assert_array_equal(some, again)
