"""Image files -> float crops: reading with bad-file skipping, decoding, pixel-exact affine warps.

Shared by the file-based readers (h36m, coco) and by augmentation, so that every resampling in
the project uses one pixel convention: u right, v down, origin at the top-left corner of the
top-left pixel (pixel (i, j) has its centre at (i + 0.5, j + 0.5)), as in pose_era.geometry.

Bad files are handled in two places, each where it is cheap:
- missing files: checked against one directory listing per folder when a reader is built
  (cheap even for SPIN's 312k Human3.6M training frames in one folder), dropped and counted in
  one log line; no file at all is a FileNotFoundError naming the folder;
- unreadable files (empty, truncated, not an image, or gone since): found by the decode itself
  in the tf.data graph, skipped, and counted by `map_skipping_bad`, which prints one line per
  skipped file with the running count and fails with a clear message if every file of a pass
  was bad. Checking every file up front would cost as much as an epoch; a bare
  `ignore_errors` would skip silently (its log is C++ WARNING, hidden by
  TF_CPP_MIN_LOG_LEVEL=2) and could not tell when nothing is left.
"""
import logging
import os
import sys

import numpy as np
import tensorflow as tf

from pose_era import geometry

log = logging.getLogger(__name__)


def existing_files(root, names, what):
    """Boolean mask of `names` (relative to `root`) that exist; logs the missing count.

    One directory listing per folder instead of a stat per file (SPIN's Human3.6M frames are
    312k files in one folder). Raises FileNotFoundError naming the folder when none exists
    (the usual cause: a wrong image root), so a user sees where the images are expected.
    """
    names = np.asarray(names).astype(str)
    listings = {}

    def present(name):
        folder, base = os.path.split(os.path.join(root, name))
        if folder not in listings:
            listings[folder] = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        return base in listings[folder]

    mask = np.fromiter((present(n) for n in names), dtype=bool, count=len(names))
    missing = int((~mask).sum())
    if missing == mask.size:
        raise FileNotFoundError(
            f"{what}: none of the {mask.size} images exist under {root} (e.g. "
            f"{os.path.join(root, names[0])}); put the image folder there or pass the "
            "right image root")
    if missing:
        log.warning("%s: skipping %d of %d samples whose image is missing under %s (first: %s)",
                    what, missing, mask.size, root, names[int(np.argmin(mask))])
    return mask


def decode(data):
    """Encoded bytes -> uint8 (H, W, 3) RGB (grey images are expanded to RGB); `warp` turns
    the crop into float, so the full image is never converted."""
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def map_skipping_bad(ds, load, placeholder, total, what):
    """`ds.map(load)` where an element whose `load` fails is dropped, counted and logged.

    load(rec) -> example; placeholder(rec) -> an example of the same structure (only takes
    the failed one's place until the count). Each element is loaded in its own one-element
    dataset whose errors are ignored, followed by its placeholder: the first of the two wins,
    so a failure (missing, empty, truncated or non-image file, a decode error) becomes a
    flagged placeholder that a `scan` counts, prints one line about, and removes. `total` is
    the number of records per pass (this shard's), for the "nothing left" error, which stays
    an error because the scan is outside every ignore_errors. Returns the examples.
    """
    def one(rec):
        good = tf.data.Dataset.from_tensors(rec).map(lambda r: (load(r), True)).ignore_errors()
        bad = tf.data.Dataset.from_tensors(rec).map(lambda r: (placeholder(r), False))
        return good.concatenate(bad).take(1).map(lambda ex, ok: (ex, ok, rec["path"]))

    def count(bad, element):
        _, ok, path = element
        bad = bad + tf.cast(tf.logical_not(ok), tf.int64)

        def report():
            tf.print(tf.strings.join([
                f"WARNING {what}: skipping unreadable image ", path, " (",
                tf.strings.as_string(bad), f" skipped so far, of {total} per pass)"]),
                output_stream=sys.stderr)
            tf.debugging.assert_less(
                bad, tf.constant(total, tf.int64),
                message=f"{what}: every image of the pass was unreadable (see the log lines "
                        "above); replace the image files")
            return bad

        return tf.cond(ok, lambda: bad, report), element

    ds = ds.interleave(one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.scan(tf.constant(0, tf.int64), count)
    def is_ok(example, ok, path):
        return ok

    def example_only(example, ok, path):
        return example

    return ds.filter(is_ok).map(example_only)


def warp(image, affine, size):
    """Resamples `image` (H, W, C), uint8 or float in [0, 1], to float32 (size, size, C) in
    [0, 1] so that output pixel p shows source pixel affine^-1 p.

    `affine` (3, 3) maps source pixel coordinates to output coordinates (corner convention).
    Bilinear; outside the source is black. Maps without rotation (crops, magnification, flips)
    take tf.image.crop_and_resize, about 2.5x faster on CPU than the general projective
    transform used for the others.
    """
    affine = tf.cast(affine, tf.float32)
    # crop_and_resize normalises by (H - 1, W - 1): an image 1 pixel high or wide takes the
    # general path
    aligned = (tf.abs(affine[0, 1]) + tf.abs(affine[1, 0]) < 1e-7) & (
        tf.reduce_min(tf.shape(image)[:2]) >= 2)
    out = tf.cond(aligned, lambda: _warp_aligned(image, affine, size),
                  lambda: _warp_general(image, affine, size))
    return out / 255.0 if image.dtype == tf.uint8 else out


def _warp_general(image, affine, size):
    inv = tf.linalg.inv(affine)
    # The op works on pixel-centre indices (x_index = u - 0.5) and maps output to input.
    shift = tf.constant([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    unshift = tf.constant([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    t = unshift @ inv @ shift
    t = t / t[2, 2]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=tf.reshape(t, [9])[:8][None],
        output_shape=tf.constant([size, size]), fill_value=tf.constant(0.0),
        interpolation="BILINEAR", fill_mode="CONSTANT")
    return tf.cast(out[0], tf.float32)


def _warp_aligned(image, affine, size):
    """u' = s u + t per axis (s < 0 flips) as one crop_and_resize box.

    crop_and_resize samples output index j at source index b0 (L - 1) + j (b1 - b0) (L - 1) /
    (size - 1); the map wants u = (j + 0.5 - t) / s, i.e. index u - 0.5.
    """
    hw = tf.cast(tf.shape(image)[:2], tf.float32) - 1.0  # (H - 1, W - 1)
    scale = tf.stack([affine[1, 1], affine[0, 0]])
    offset = tf.stack([affine[1, 2], affine[0, 2]])
    start = ((0.5 - offset) / scale - 0.5) / hw
    end = start + (size - 1.0) / (scale * hw)
    box = tf.concat([start, end], axis=0)[None]  # [y0, x0, y1, x1]
    return tf.image.crop_and_resize(image[None], box, [0], [size, size],
                                    extrapolation_value=0.0)[0]


def square_box(center, scale):
    """SPIN's crop box [x0, y0, x1, y1]: side 200 * scale pixels centred on `center` (u, v)."""
    center = tf.cast(center, tf.float32)
    half = 100.0 * tf.cast(scale, tf.float32)
    return tf.stack([center[0] - half, center[1] - half, center[0] + half, center[1] + half])


def crop(image, K_full, box, size):
    """Crops `box` out of `image` resized to size x size; returns (crop, K_crop, pixel map).

    The pixel map (full-image pixels -> crop pixels) is crop_intrinsics applied to the
    identity, so the image warp and the intrinsics come from the one formula in geometry.
    """
    affine = geometry.crop_intrinsics(tf.eye(3), box, size)
    K_crop = geometry.crop_intrinsics(tf.cast(K_full, tf.float32), box, size)
    return warp(image, affine, size), K_crop, affine


def map_keypoints(kp, affine):
    """(..., N, 3) pixel keypoints + visibility through a 3x3 pixel map; invisible ones -> 0."""
    kp = tf.cast(kp, tf.float32)
    affine = tf.cast(affine, tf.float32)
    uv = kp[..., :2] @ tf.linalg.matrix_transpose(affine[..., :2, :2]) + affine[..., None, :2, 2]
    vis = kp[..., 2:3]
    return tf.concat([uv * tf.cast(vis > 0, tf.float32), vis], axis=-1)
