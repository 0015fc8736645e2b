"""Builds a synthetic dataset folder: deterministic, in worker processes, written atomically.

Layout of DIR:
  meta.json                         what was made and with which body model
  train-XXXXX-of-YYYYY.tfrecord     train split (records.py format)
  test-XXXXX-of-YYYYY.tfrecord      test split, same format
  images/test_XXXXXXX.jpg           test images (the same bytes as in the test records)
  synth_test.npz                    test split in SPIN's Human3.6M npz layout (+ body params)

Determinism: example i of a split depends only on (seed, split, i) (scene.example_seed). The
work is cut into fixed jobs of CHUNK examples (one batched body-model forward each; its records
go to a part file, joined into shards of SHARD_SIZE at the end), whatever the number of workers,
and every worker runs TensorFlow on one thread, so the same seed gives byte-identical files on
the same machine and software. `workers=0` runs in this process (for
debugging; TensorFlow then keeps this process's thread settings, which may change the last bits).

Splits: a caller may ask for one split (evaluation needs only the test images, so it does not
render the training set first). Example i of a split does not depend on the other split, so a
folder made split by split ends byte-identical to one made whole; meta.json lists the splits
made ("splits"; a folder without the key was made whole).

Atomicity: a new folder is written into DIR.tmp-XXXX next to DIR and renamed to DIR at the end;
a failure removes the temporary folder, a killed run leaves only a DIR.tmp-* folder that the
next build removes (builds of one DIR are serialised by the lock file DIR.lock). A split added
to an existing folder is rendered into DIR.tmp-XXXX too, its files then moved into DIR, and
meta.json, rewritten atomically last, is what makes it part of the set: a run killed while
moving leaves files of a split meta.json does not list, which the next build removes first.
"""
import fcntl
import io
import json
import multiprocessing
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from pose_era import constants
from pose_era.io import sha256_of, write_text

FORMAT = "pose_era synthetic dataset v1"
SPLITS = ("train", "test")
SHARD_SIZE = 128
CHUNK = 16
NPZ_NAME = "synth_test.npz"

_maker = None  # the worker process's SceneMaker


def imgname(split, index):
    return f"images/{split}_{index:07d}.jpg"


def plan(train, test):
    """The jobs, CHUNK examples each, nested in shards of SHARD_SIZE:
    (split, shard, num_shards, first index, end index)."""
    jobs = []
    for split, n in (("train", train), ("test", test)):
        shards = -(-n // SHARD_SIZE)
        for s in range(shards):
            stop = min(n, (s + 1) * SHARD_SIZE)
            jobs += [(split, s, shards, i, min(stop, i + CHUNK))
                     for i in range(s * SHARD_SIZE, stop, CHUNK)]
    return jobs


def _split_files(directory, split):
    """The files and folders of `split` in a dataset folder (records; test: images, npz)."""
    directory = Path(directory)
    paths = sorted(directory.glob(f"{split}-*.tfrecord"))
    if split == "test":
        paths += [p for p in (directory / "images", directory / NPZ_NAME) if p.exists()]
    return paths


def _part_name(split, shard, start):
    return f"{split}-{shard:05d}-{start:09d}.part"


def _init_worker(body_path, scene_options, single_thread):
    """Load the body model once per process; worker processes run on one thread each (the
    pool is the parallelism, and fixed threading keeps results bit-identical) and see no GPU
    (rendering is NumPy; a worker must not take an accelerator's memory)."""
    global _maker
    import cv2
    import tensorflow as tf
    if single_thread:
        cv2.setNumThreads(1)
        tf.config.set_visible_devices([], "GPU")
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from data_pipelines.synthetic.scene import SceneMaker
    from pose_era.body import BodyModel
    _maker = SceneMaker(BodyModel.load(body_path), **scene_options)


def _run_job(args):
    """Make one chunk: its records go to a part file (concatenated into its shard at the end),
    test images to images/; returns (split, shard, start, test labels or None, count)."""
    from data_pipelines.synthetic import records, scene
    (split, shard, _, start, stop), tmp, seed = args
    idx = range(start, stop)
    examples = _maker.make([scene.example_seed(seed, split, k) for k in idx],
                           [imgname(split, k) for k in idx])
    records.write_shard(Path(tmp) / _part_name(split, shard, start), examples)
    if split == "train":
        return split, shard, start, None, len(examples)
    for ex in examples:
        (Path(tmp) / ex["imgname"]).write_bytes(ex["jpeg"])
    keys = ("j3d", "betas", "pose", "transl", "K")
    labels = {k: np.stack([ex[k] for ex in examples]) for k in keys}
    labels["imgname"] = np.array([ex["imgname"] for ex in examples])
    return split, shard, start, labels, len(examples)


def _join_parts(tmp, jobs):
    """Concatenate each shard's part files in index order (TFRecord files concatenate)."""
    from data_pipelines.synthetic import records
    shards = {}
    for split, shard, num_shards, start, _ in jobs:
        shards.setdefault((split, shard, num_shards), []).append(start)
    for (split, shard, num_shards), starts in shards.items():
        with open(tmp / records.shard_name(split, shard, num_shards), "wb") as out:
            for start in sorted(starts):
                part = tmp / _part_name(split, shard, start)
                out.write(part.read_bytes())
                part.unlink()


def spin_arrays(labels, image_size):
    """SPIN's Human3.6M npz arrays for examples whose images are already the crops: the box
    (center, scale = box size / 200) is the whole image; S (N,24,4) holds the pelvis-centred
    H36M-17 joints in SPIN's J24 slots with validity 1 (as SPIN's h36m.py preprocessing);
    betas, pose (N,J,3), transl and K (the images' intrinsics) give the mesh's ground truth."""
    j3d = labels["j3d"]
    n = len(j3d)
    S = np.zeros((n, 24, 4), np.float32)
    S[:, list(constants.J24_TO_H36M17), :3] = j3d - j3d[:, :1]
    S[:, list(constants.J24_TO_H36M17), 3] = 1.0
    return {"imgname": labels["imgname"],
            "center": np.full((n, 2), image_size / 2, np.float32),
            "scale": np.full(n, image_size / 200, np.float32),
            "S": S, "betas": labels["betas"], "pose": labels["pose"],
            "transl": labels["transl"], "K": labels["K"]}


def save_npz(path, arrays):
    """np.savez without timestamps in the zip entries, so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0)),
                        buf.getvalue())


def _check_args(train, test, workers, image_size, max_yaw):
    for name, value in (("train", train), ("test", test), ("workers", workers)):
        if int(value) < 0:
            raise ValueError(f"--{name} must be >= 0, got {value}")
    if int(train) + int(test) == 0:
        raise ValueError("nothing to make: give --train and/or --test a positive count")
    if int(image_size) < 32:
        raise ValueError(f"image size must be at least 32 px, got {image_size}")
    if not 0.0 <= float(max_yaw) <= 180.0:
        raise ValueError(f"max yaw must be in [0, 180] degrees, got {max_yaw}")


def _body_file(body_path):
    from pose_era.body import default_body_model_path
    from pose_era.body import format as body_format
    path = Path(body_path) if body_path else default_body_model_path()
    arrays = body_format.load(path)  # clear error when missing or malformed
    missing = [k for k in ("h36m17", "coco17") if k not in arrays]
    if missing:
        raise ValueError(f"body model {path} has no {' / '.join(missing)} keypoint regressor; "
                         f"rebuild it with tools/build_body_model.py")
    return path.resolve(), arrays


def _meta(train, test, seed, image_size, max_yaw, body_path, arrays, splits):
    return {"format": FORMAT, "train": int(train), "test": int(test), "seed": int(seed),
            "image_size": int(image_size), "max_yaw": float(max_yaw),
            "shard_size": int(SHARD_SIZE),
            "body_model": str(body_path), "body_model_sha256": sha256_of(body_path),
            "num_betas": int(arrays["shapedirs"].shape[-1]),
            "num_joints": int(arrays["parents"].shape[0]),
            "num_markers": int(arrays["markers"].shape[0]),
            "kp2d_codes": "0 outside the image, 1 occluded, 2 visible",
            "splits": sorted(splits)}


def _meta_text(meta):
    return json.dumps(meta, indent=1, sort_keys=True) + "\n"


def read_meta(directory):
    """The meta.json of a dataset folder (FileNotFoundError when it is not one)."""
    path = Path(directory) / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a synthetic dataset (no meta.json); make "
                                f"one with: python tools/make_synth.py --out {directory} ...")
    return json.loads(path.read_text())


def made_splits(meta):
    """The splits a folder's meta.json says are made (a folder without the key was made whole)."""
    return set(meta.get("splits", SPLITS))


def check_body_model(directory, body_path=None):
    """ValueError when the dataset in `directory` was made with another body model than
    `body_path` (default: the cached Anny model): its labels would not fit the model's sizes.
    The file's SHA-256 decides where meta.json records it; otherwise the label sizes it records
    (a folder written by other code) must match."""
    meta = read_meta(directory)
    path, arrays = _body_file(body_path)
    sizes = {"num_joints": int(arrays["parents"].shape[0]),
             "num_betas": int(arrays["shapedirs"].shape[-1]),
             "num_markers": int(arrays["markers"].shape[0])}
    if "body_model_sha256" in meta:
        same = meta["body_model_sha256"] == sha256_of(path)
    else:
        same = all(meta[k] == v for k, v in sizes.items() if k in meta)
    if not same:
        def described(d):
            return ", ".join(f"{d.get(k)} {k[4:]}" for k in sizes)
        raise ValueError(
            f"{directory} was made with another body model ({meta.get('body_model', '?')}: "
            f"{described(meta)}) than {path} ({described(sizes)}); set body.path to the "
            "dataset's body model or make a dataset with this one (python tools/make_synth.py "
            "--body FILE ...)")


# Keys added to meta.json after v1 folders were made, with the value those folders were made with.
_OLDER_DEFAULTS = {"max_yaw": 180.0}


def _differences(meta, want):
    """The meta.json keys that say `want` would make another dataset."""
    keys = ("format", "train", "test", "seed", "image_size", "max_yaw", "shard_size",
            "body_model_sha256")
    return [k for k in keys if meta.get(k, _OLDER_DEFAULTS.get(k)) != want[k]]


def write_dataset(out, train, test, seed, body_path=None, workers=2, image_size=480,
                  max_yaw=180.0, progress=True, exist_ok=False, splits=SPLITS):
    """Make the dataset folder `out` with `splits` of it; returns its Path.

    exist_ok: an existing folder made with the same arguments is returned with the splits it
    lacks added (one made with other arguments is an error either way).
    """
    _check_args(train, test, workers, image_size, max_yaw)
    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f"splits must be some of {', '.join(SPLITS)}, got {list(splits)}")
    out = Path(out).resolve()
    body_path, arrays = _body_file(body_path)
    want = _meta(train, test, seed, image_size, max_yaw, body_path, arrays, splits)
    counts = {"train": int(train), "test": int(test)}
    scene_options = dict(image_size=int(image_size), max_yaw=float(max_yaw))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists():
            if not out.is_dir():
                raise FileExistsError(f"{out} is a file, not a dataset folder; choose another "
                                      "--out")
            meta = read_meta(out)
            differ = _differences(meta, want)
            if not exist_ok or differ:
                raise FileExistsError(f"{out} already exists, made with other arguments "
                                      f"({', '.join(differ)} differ); delete it or use another "
                                      "folder" if differ else f"{out} already exists")
            missing = set(splits) - made_splits(meta)
            if missing:
                _add_splits(out, meta, missing, counts, seed, body_path, workers, scene_options,
                            progress)
            return out
        tmp = _fresh_tmp(out)
        try:
            _write_all(tmp, {s: n for s, n in counts.items() if s in splits}, seed, body_path,
                       workers, scene_options, progress)
            (tmp / "meta.json").write_text(_meta_text(want))
            os.chmod(tmp, 0o755)
            os.rename(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def _fresh_tmp(out):
    """A new DIR.tmp-XXXX beside the dataset folder `out`, once those killed runs left are
    removed."""
    for stale in out.parent.glob(f"{out.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))


def _add_splits(out, meta, missing, counts, seed, body_path, workers, scene_options, progress):
    """Renders the `missing` splits of the existing folder `out` beside it, moves their files
    in (the npz last) and then lists them in meta.json (the module docstring says why)."""
    for split in missing:                       # left by a killed run: not part of the set
        for path in _split_files(out, split):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    tmp = _fresh_tmp(out)
    try:
        _write_all(tmp, {s: counts[s] for s in missing}, seed, body_path, workers,
                   scene_options, progress)
        for path in sorted(tmp.iterdir(), key=lambda p: p.name == NPZ_NAME):
            os.replace(path, out / path.name)
        write_text(out / "meta.json", _meta_text(dict(meta, splits=sorted(
            made_splits(meta) | set(missing)))))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_all(tmp, counts, seed, body_path, workers, scene_options, progress):
    """Renders every job of the splits in `counts` ({split: number of examples}) into `tmp`;
    scene_options are SceneMaker's keyword arguments."""
    from tqdm import tqdm
    train, test = counts.get("train", 0), counts.get("test", 0)
    if not train + test:
        return
    if test:
        (tmp / "images").mkdir()
    jobs = plan(train, test)
    test_labels = {}
    bar = tqdm(total=train + test, unit="img", desc=f"synthetic -> {tmp.name}",
               disable=not progress)
    pool = None
    try:
        args = [(job, str(tmp), int(seed)) for job in jobs]
        if workers == 0:
            _init_worker(str(body_path), scene_options, single_thread=False)
            results = map(_run_job, args)
        else:
            ctx = multiprocessing.get_context("spawn")
            pool = ctx.Pool(min(workers, len(jobs)), initializer=_init_worker,
                            initargs=(str(body_path), scene_options, True))
            results = pool.imap_unordered(_run_job, args)
        for split, shard, start, labels, count in results:
            if labels is not None:
                test_labels[start] = labels
            bar.update(count)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    _join_parts(tmp, jobs)
    if test:
        chunks = [test_labels[s] for s in sorted(test_labels)]
        labels = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        save_npz(tmp / NPZ_NAME, spin_arrays(labels, scene_options["image_size"]))


def ensure_synthetic_dataset(directory, train, test, seed, body_path=None, workers=2,
                             image_size=480, max_yaw=180.0, progress=True, splits=SPLITS):
    """The synthetic dataset folder with `splits` made, on first use (training and evaluation
    call this; evaluation asks for the test split only).

    Returns the folder's Path; an existing folder made with other arguments is an error that
    says so, rather than silently training on different data."""
    return write_dataset(directory, train, test, seed, body_path=body_path, workers=workers,
                         image_size=image_size, max_yaw=max_yaw, progress=progress,
                         exist_ok=True, splits=splits)
