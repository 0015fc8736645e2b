"""A 2D detector's errors, simulated: the keypoint input of a keypoint-fed network in training.

Why: a network with `model.keypoint_input` reads external COCO-17 keypoints beside the image
(models/keypoint_input.py). At test time they come from BlazePose (eval/keypoint_input.py); in
training only the synthetic set's true `kp2d` exist. Fed the truth, the network would learn to
trust it blindly and fail on a detector's real mistakes, so the truth is corrupted to look like
BlazePose's output on rendered people (the parameters and their measurement:
configs/common_pose.py `keypoint_noise_section`, docs/pose_results.md, `tools/keypoint_noise.py`).

The network's keypoint input (one convention, used by training, evaluation and the demo):
(17, 3) per COCO-17 keypoint (u / S, v / S, flag) in the S x S crop, u right, v down from the
crop's top-left corner; flag 1 = the detector reports the keypoint seen and it lies inside the
crop, else 0, and then u = v = 0.

The model, per example, in this order (`corrupt`; sizes in units of the person's size = the
longer side of the box around its labelled keypoints):
1. `missed`: the detector finds nobody: every keypoint absent;
2. `mirror`: the whole person comes out mirrored (every left/right pair swapped; BlazePose's
   known failure on people seen from behind);
3. `swap`: each left/right pair swapped on its own;
4. Gaussian error of `sigma[k]` per coordinate;
5. `gross`: a keypoint misplaced by a Gaussian of `gross_sigma` (the detector's big misses);
6. `drop[k]`: a labelled keypoint reported unseen (BlazePose's visibility < 0.5: mostly
   occluded limbs);
7. unlabelled keypoints and keypoints that end outside the crop are absent.
And per batch (`swap_images`): with probability `image_swap` an example's image is replaced by
its batch neighbour's, while its keypoints and labels stay. The network then sees an ordinary
image that says nothing about the pose it must output, and learns to take the pose from the
keypoints where the image disagrees with them: on real photos the image is what it reads
badly (trained on renders) and BlazePose's keypoints are what is right.
`estimate` does the inverse: the parameters of this model from detected and true keypoints.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from pose_era import constants

N = len(constants.COCO17_NAMES)
FLIP = constants.COCO17_FLIP_PERM
PAIRS = tuple((i, j) for i, j in enumerate(FLIP) if i < j)      # (left, right) index pairs
LIMBS = tuple(range(5, N))                                       # shoulders .. ankles


@dataclasses.dataclass(frozen=True)
class KeypointNoise:
    """The noise model's parameters (module docstring); sigma and drop per COCO-17 keypoint."""
    sigma: tuple = (0.02,) * N
    drop: tuple = (0.0,) * N
    gross: float = 0.0
    gross_sigma: float = 0.2
    swap: float = 0.0
    mirror: float = 0.0
    missed: float = 0.0
    image_swap: float = 0.0

    @classmethod
    def from_config(cls, section):
        """From config.data.keypoint_noise (configs/common_pose.py)."""
        values = {f.name: section[f.name] for f in dataclasses.fields(cls)}
        for key in ("sigma", "drop"):
            values[key] = tuple(float(v) for v in values[key])
            if len(values[key]) != N:
                raise ValueError(f"data.keypoint_noise.{key} has {len(values[key])} values; "
                                 f"give one per COCO-17 keypoint ({N})")
        return cls(**{k: v if isinstance(v, tuple) else float(v) for k, v in values.items()})


def network_input(uv, flag, size):
    """(..., 17, 2) crop pixels and (..., 17) flags -> (..., 17, 3) the network's keypoint input:
    (u / S, v / S, flag), zero where flag is 0 or the keypoint lies outside the crop."""
    uv = tf.cast(uv, tf.float32)
    size = float(size)
    inside = tf.reduce_all((uv >= 0.0) & (uv <= size), axis=-1)
    flag = tf.cast(flag, tf.float32) * tf.cast(inside, tf.float32)
    return tf.concat([uv / size * flag[..., None], flag[..., None]], axis=-1)


def person_size(kp2d, minimum):
    """(...,) the longer side of the box around the labelled keypoints (visibility > 0) of
    (..., 17, 3) kp2d, at least `minimum` (also for fewer than two labelled keypoints)."""
    kp2d = tf.cast(kp2d, tf.float32)
    labelled = kp2d[..., 2:] > 0
    big = tf.constant(1e9)
    lo = tf.reduce_min(tf.where(labelled, kp2d[..., :2], big), axis=-2)
    hi = tf.reduce_max(tf.where(labelled, kp2d[..., :2], -big), axis=-2)
    return tf.maximum(tf.reduce_max(hi - lo, axis=-1), float(minimum))


# Which pair of PAIRS each keypoint belongs to (len(PAIRS) for the nose, in no pair).
_PAIR_OF = tuple(next((i for i, pair in enumerate(PAIRS) if k in pair), len(PAIRS))
                 for k in range(N))


def _swap_pairs(x, which):
    """x (17, D) with the left/right pairs where which (len(PAIRS),) is True exchanged."""
    chosen = tf.gather(tf.concat([which, [False]], axis=0), _PAIR_OF)
    return tf.gather(x, tf.where(chosen, tf.constant(FLIP), tf.range(N)))


def corrupt(kp2d, seed, noise, image_size):
    """One example's (17, 3) kp2d (crop pixels + labelled flag) -> the network's (17, 3)
    keypoint input, corrupted as the module docstring says. seed: (2,) int (stateless)."""
    kp2d = tf.ensure_shape(tf.cast(kp2d, tf.float32), (N, 3))
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)
    uniform = lambda i, shape: tf.random.stateless_uniform(shape, seeds[i])  # noqa: E731
    normal = lambda i, shape: tf.random.stateless_normal(shape, seeds[i])    # noqa: E731
    size = person_size(kp2d, image_size / 8.0)
    uv, labelled = kp2d[:, :2], tf.cast(kp2d[:, 2] > 0, tf.float32)
    both = tf.concat([uv, labelled[:, None]], axis=1)
    n_pairs = len(PAIRS)
    mirrored = uniform(0, []) < noise.mirror
    both = _swap_pairs(both, tf.fill([n_pairs], mirrored))
    both = _swap_pairs(both, uniform(1, [n_pairs]) < noise.swap)
    uv, labelled = both[:, :2], both[:, 2]
    uv += normal(2, [N, 2]) * tf.constant(noise.sigma, tf.float32)[:, None] * size
    gross = uniform(3, [N]) < noise.gross
    uv += tf.where(gross[:, None], normal(4, [N, 2]) * noise.gross_sigma * size, 0.0)
    seen = labelled * tf.cast(uniform(5, [N]) >= tf.constant(noise.drop, tf.float32), tf.float32)
    seen *= tf.cast(uniform(6, []) >= noise.missed, tf.float32)
    return network_input(uv, seen, image_size)


def add_keypoints(example, seed, noise, image_size):
    """The example with `keypoints`: its kp2d corrupted by `noise` (the network's input)."""
    return {**example, "keypoints": corrupt(example["kp2d"], seed, noise, image_size)}


def swap_images(batch, seed, noise):
    """A batch with each example's image replaced, with probability noise.image_swap, by the
    next example's (the last by the first's); labels and keypoints stay (module docstring)."""
    images = batch["image"]
    chosen = tf.random.stateless_uniform(tf.shape(images)[:1], seed) < noise.image_swap
    swapped = tf.where(chosen[:, None, None, None], tf.roll(images, -1, axis=0), images)
    return {**batch, "image": swapped}


# --- Estimating the parameters from a detector's output (NumPy) -------------------------------

def _median_error(a, b, mask):
    d = np.linalg.norm(a - b, axis=-1)
    return float(np.median(d[mask])) if mask.any() else np.nan


def estimate(detected, seen, truth, labelled, size, found=None, gross_at=0.15):
    """The noise model's parameters (and diagnostics) from detector output vs the truth.

    detected (P, 17, 2), seen (P, 17) bool: the detector's keypoints and which it reports seen;
    truth (P, 17, 2), labelled (P, 17) bool; size (P,) each person's size (pixels); found (P,)
    bool: whether the detector found the person at all (default: all; the others count only
    for `missed`). gross_at: an error beyond this fraction of the size is gross.

    A person is mirrored when the detector's keypoints with left and right exchanged lie at
    less than half the median limb error of the unexchanged ones; a left/right pair of a
    person that is not is swapped when exchanging its two keypoints halves their summed error
    and that sum exceeds 2 gross_at. After undoing both, an error over gross_at is gross; the
    rest give sigma (per coordinate, sqrt(mean(e^2) / 2), pooled over left and right). Returns a
    dict: the KeypointNoise fields (sigma, drop as 17-tuples, pooled over left and right) and
    counts, the median error per keypoint, the mean signed error (bias) per keypoint, in units
    of the size."""
    detected, truth = np.asarray(detected, np.float64), np.asarray(truth, np.float64)
    seen, labelled = np.asarray(seen, bool), np.asarray(labelled, bool)
    size = np.asarray(size, np.float64)
    found = np.ones(len(size), bool) if found is None else np.asarray(found, bool)
    detected, seen, truth, labelled, size = (a[found] for a in (detected, seen, truth, labelled,
                                                                 size))
    both = seen & labelled
    flip = list(FLIP)
    limbs = np.zeros(N, bool)
    limbs[list(LIMBS)] = True
    mirrored = np.zeros(len(size), bool)
    for p in range(len(size)):
        mask = both[p] & both[p][flip] & limbs
        same = _median_error(detected[p], truth[p], mask)
        other = _median_error(detected[p][flip], truth[p], mask)
        mirrored[p] = bool(mask.sum() >= 4 and other < 0.5 * same)
        if mirrored[p]:
            detected[p], seen[p] = detected[p][flip], seen[p][flip]
    both = seen & labelled
    err = np.linalg.norm(detected - truth, axis=-1) / size[:, None]
    swaps = pairs = 0
    for p in range(len(size)):
        for left, right in PAIRS:
            if not (both[p, left] and both[p, right]):
                continue
            pairs += 1
            same = err[p, left] + err[p, right]
            crossed = (np.linalg.norm(detected[p, left] - truth[p, right])
                       + np.linalg.norm(detected[p, right] - truth[p, left])) / size[p]
            if same > 2 * gross_at and crossed < 0.5 * same:
                swaps += 1
                detected[p, [left, right]] = detected[p, [right, left]]
    err = np.linalg.norm(detected - truth, axis=-1) / size[:, None]
    signed = (detected - truth) / size[:, None, None]
    gross = both & (err > gross_at)
    core = both & ~gross
    groups = [sorted({k, FLIP[k]}) for k in range(N)]
    sigma, drop, median, bias = [], [], [], []
    for k in range(N):
        g = groups[k]
        e = err[:, g][core[:, g]]
        sigma.append(float(np.sqrt(np.mean(e ** 2) / 2)) if e.size else np.nan)
        drop.append(float(1.0 - both[:, g].sum() / max(labelled[:, g].sum(), 1)))
        median.append(float(np.median(err[:, k][both[:, k]])) if both[:, k].any() else np.nan)
        bias.append(signed[:, k][core[:, k]].mean(0).tolist() if core[:, k].any() else
                    [np.nan, np.nan])
    gross_err = err[gross]
    total_found = int(found.sum())
    return {
        "sigma": tuple(sigma), "drop": tuple(drop),
        "gross": float(gross.sum() / max(both.sum(), 1)),
        "gross_sigma": float(np.sqrt(np.mean(gross_err ** 2) / 2)) if gross_err.size else np.nan,
        "swap": float(swaps / max(pairs, 1)),
        "mirror": float(mirrored.mean()) if mirrored.size else np.nan,
        "missed": float(1.0 - total_found / max(len(found), 1)),
        "median": tuple(median), "bias": tuple(map(tuple, bias)),
        "counts": {"people": len(found), "found": total_found, "mirrored": int(mirrored.sum()),
                   "keypoints_seen": int(both.sum()), "keypoints_labelled": int(labelled.sum()),
                   "gross": int(gross.sum()), "pairs": pairs, "swaps": swaps},
    }
