"""build_dataset: sources by name, batching, sharding with an InputContext of 2 replicas, a
MirroredStrategy step on two logical CPUs, mixtures, the synthetic branch, config errors."""
import json
import shutil

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from configs.common_pose import data_section
from data_pipelines import pipeline, schema
from data_pipelines.synthetic import records
from tests import data_files as files

SIZE = 48
SIZES = schema.LabelSizes(num_markers=4, num_betas=2, num_joints=3)


def _config(name, directory, batch=4, **data):
    return ml_collections.ConfigDict({
        "data": data_section(**{"name": name, "dir": str(directory), "image_size": SIZE,
                                "augment": True, **data}),
        "body": {"path": ""}, "train": {"batch_size": batch, "seed": 0},
        "eval": {"batch_size": 2}})


def _build(config, split, input_context=None):
    return pipeline.build_dataset(config, split, input_context, sizes=SIZES)


@pytest.fixture(scope="module")
def h36m_dir(tmp_path_factory):
    """SPIN layout: h36m_train.npz and h36m_valid_protocol2.npz with images/ beside them."""
    d = tmp_path_factory.mktemp("h36m")
    files.spin_npz(d, n=5, ext=".jpg")
    shutil.copy(d / "data.npz", d / "h36m_train.npz")
    shutil.copy(d / "data.npz", d / "h36m_valid_protocol2.npz")
    return d


def _names(batch):
    return [n.decode() for n in batch["imgname"].numpy()]


def test_train_batches_follow_the_schema(h36m_dir):
    ds = _build(_config("h36m", h36m_dir), "train")
    expected = schema.shapes(SIZES, SIZE)
    for batch in ds.take(3):  # 12 examples from 5: the train split repeats
        assert set(batch) == set(expected)
        for key, shape in expected.items():
            assert tuple(batch[key].shape) == (4, *shape), key
            assert batch[key].dtype == (tf.string if key == "imgname" else tf.float32)
        assert np.isfinite(batch["image"].numpy()).all()
        assert (batch["has_j3d"].numpy() == 1).all() and (batch["has_params"].numpy() == 0).all()


def test_test_split_is_ordered_and_finite(h36m_dir):
    batches = list(_build(_config("h36m", h36m_dir), "test"))
    assert [len(b["imgname"]) for b in batches] == [2, 2, 1]  # eval.batch_size, remainder kept
    names = sum((_names(b) for b in batches), [])
    assert names == [f"images/S9_Walking_1.xyz_{i:06d}.jpg" for i in range(5)]


def test_val_slice_and_example_counts(h36m_dir):
    config = _config("h36m", h36m_dir, val_size=3)
    names = sum((_names(b) for b in _build(config, "val")), [])
    assert names == [f"images/S9_Walking_1.xyz_{i:06d}.jpg" for i in range(3)]
    assert [pipeline.num_examples(config, s) for s in ("train", "test", "val")] == [5, 5, 3]


def test_sharding_with_two_input_pipelines(h36m_dir):
    config = _config("h36m", h36m_dir, batch=4)
    seen = []
    for pid in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid,
                                         num_replicas_in_sync=2)
        test = sum((_names(b) for b in _build(config, "test", ctx)), [])
        assert test == [f"images/S9_Walking_1.xyz_{i:06d}.jpg" for i in range(pid, 5, 2)]
        train = _build(config, "train", ctx)
        batches = list(train.take(4))
        assert all(len(b["imgname"]) == 2 for b in batches)  # per-replica batch size
        seen.append(set(sum((_names(b) for b in batches), [])))
    assert seen[0] == {f"images/S9_Walking_1.xyz_{i:06d}.jpg" for i in (0, 2, 4)}
    assert seen[1] == {f"images/S9_Walking_1.xyz_{i:06d}.jpg" for i in (1, 3)}


def test_mirrored_strategy_step(h36m_dir):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    config = _config("h36m", h36m_dir, batch=4)
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: _build(config, "train", ctx))
    batch = next(iter(dist))

    @tf.function
    def step(b):
        return strategy.run(lambda x: tf.reduce_sum(x["j3d"]) + tf.reduce_sum(x["image"]),
                            args=(b,))

    per_replica = strategy.experimental_local_results(batch["image"])
    assert [tuple(x.shape) for x in per_replica] == [(2, SIZE, SIZE, 3)] * 2
    total = strategy.reduce("SUM", step(batch), axis=None)
    assert np.isfinite(total.numpy())


def test_mixture_draws_from_both_sources(h36m_dir, tmp_path):
    json_path, folder, _ = files.coco_json(tmp_path)
    config = _config("h36m+coco", h36m_dir, batch=8, coco_json=json_path, coco_images=folder,
                     mix_weights=(0.5, 0.5))
    names = sum((_names(b) for b in _build(config, "train").take(3)), [])
    assert any(n.startswith("images/") for n in names)
    assert any(n.startswith("0000") for n in names)


def _synthetic_folder(directory, n_train=6):
    """A synthetic dataset folder in the writer's format: TFRecords + synth_test.npz."""
    rng = np.random.default_rng(0)
    K = np.array([[60.0, 0, SIZE / 2], [0, 60.0, SIZE / 2], [0, 0, 1]])
    examples = []
    for i in range(n_train):
        image = (rng.uniform(0, 255, (SIZE, SIZE, 3))).astype(np.uint8)
        examples.append(dict(
            jpeg=tf.io.encode_jpeg(image).numpy(), imgname=f"images/train_{i:07d}.jpg", K=K,
            kp2d=np.concatenate([rng.uniform(0, SIZE, (17, 2)), np.full((17, 1), 2.0)], 1),
            j3d=rng.normal(size=(17, 3)), markers=rng.normal(size=(SIZES.num_markers, 3)),
            betas=rng.normal(size=SIZES.num_betas), pose=rng.normal(size=(SIZES.num_joints, 3)),
            transl=rng.normal(size=3)))
    directory.mkdir(exist_ok=True)
    records.write_shard(directory / records.shard_name("train", 0, 2), examples[:3])
    records.write_shard(directory / records.shard_name("train", 1, 2), examples[3:])
    (directory / "meta.json").write_text(json.dumps({"train": n_train, "test": 2}))
    files.spin_npz(directory, n=2, ext=".jpg")
    shutil.move(directory / "data.npz", directory / "synth_test.npz")
    return examples


def test_synthetic_branch(tmp_path):
    examples = _synthetic_folder(tmp_path / "synth")
    config = _config("synthetic", tmp_path / "synth", batch=3, augment=False)
    batch = next(iter(_build(config, "train")))
    assert set(_names(batch)) <= {e["imgname"] for e in examples}
    by_name = {e["imgname"]: e for e in examples}
    for i, name in enumerate(_names(batch)):
        np.testing.assert_allclose(batch["pose"][i], by_name[name]["pose"], rtol=1e-6)
    assert (batch["has_params"].numpy() == 1).all()
    test = list(_build(config, "test"))
    assert sum(len(b["imgname"]) for b in test) == 2  # synth_test.npz, via the h36m reader
    assert pipeline.num_examples(config, "train") == 6


def test_config_errors(h36m_dir):
    with pytest.raises(ValueError, match="unknown source"):
        _build(_config("h36m+mpii", h36m_dir), "train")
    with pytest.raises(ValueError, match="split must be one of"):
        _build(_config("h36m", h36m_dir), "validation")
    with pytest.raises(ValueError, match="mix_weights has 1 entries"):
        _build(_config("h36m+coco", h36m_dir, mix_weights=(1.0,),
                                       coco_json="x.json"), "train")
    with pytest.raises(FileNotFoundError, match="h36m_valid_protocol1.npz not found; put"):
        _build(_config("h36m", h36m_dir, protocol=1), "test")
