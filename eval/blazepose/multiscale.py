"""Several people in one photo: the detector on square tiles at several scales, and the
duplicates that gives merged into one person each (issue 19, "Several people").

Why: the detector sees the photo letterboxed to 224 x 224 and keys on the face, so on a wide or
tall photo a person a third or half of its height has a face of a few input pixels and is
missed (bus.jpg, zidane.jpg: docs/eval_demo.md). Measured on the rendered test people pasted
at several sizes, the detector finds a person whose keypoints span from about a quarter to 1.2
x the side of the square it is given; real photos are harder (bus.jpg's black coat, 455 px
tall, is missed in an 810 px tile and found in 405 and 450 px ones). So (the numbers below are
the module's constants):
- the smallest person searched for: min_person = max(MIN_PERSON_PX, an eighth of the photo's
  shorter side) (issue 19 asks for people of at least ~150 px; the eighth keeps a 4000 x 3000
  phone photo at 52 tiles instead of 308);
- tiles: squares of side S = the photo's shorter side, then halved while over TILE_REACH x
  min_person, the last no smaller than that (1280 x 720: 720 and 450; 1920 x 1080: 1080, 540
  and 450: 56 tiles), so that the smallest person is a third of some tile's side; the tiles of
  one side overlap by half, the first and last touching the borders;
- a person found only in a tile must be at least min(min_person, a third of the photo's
  shorter side) tall (body_size: the longer side of its 33 landmarks' box, which holds
  BlazePose's guess for the parts outside the photo too): a tile of an arm or a coat is a small
  photo in which the detector and the landmark model see a small person (bus_cut.png: one
  97 x 80 px inside the black coat's body, pose presence 0.99);
- one person is found in several tiles and scales, with boxes of very different sizes, so the
  detector's box NMS does not merge them. The whole photo's people are kept as they are (the
  detector's NMS told them apart); a tile's candidate is added, best first (detector score x
  pose presence), unless it is the same person as one already there (same_person), by either
  - landmarks that agree: the median distance of the landmarks both rate visible (all 33 when
    fewer than MIN_COMMON are) under (SAME_PERSON + OVERLAP_BONUS x c) x the smaller
    body_size, c the fraction of the smaller landmarks' box (clipped to the photo) inside the
    other's, as they are or one left-right mirrored (a person seen from behind may come out
    mirrored in one). Measured on the real-photo set: one person's candidates 0.00-0.08 apart,
    different people 0.27-0.49 with boxes at most 0.16 inside each other (zidane.jpg's two
    overlap), so 0.2; a poor second reading of one person lies further when its box overlaps
    (t1.jpg, the group photo of docs/eval_demo.md: 0.23 apart, 0.60 inside), hence the bonus
    (0.38 there); or
  - one body inside the other and upside down against it: its box at least CONTAINED inside
    the other's, and one reading's nose above its feet, the other's below (`upright`): a
    tile's detection turned 180 degrees makes the landmark model read a person seen from
    behind upside down (pose presence 1.0, 0.4-0.8 of the body size away: rendered people in
    tests/test_blazepose.py). An upright body inside another's box whose landmarks lie
    further than the bonus allows is a second person: t1.jpg's woman standing behind a
    seated man (0.67 apart, wholly inside his box), which the rule used to merge away.
Tried and left out: a lower detector threshold with the landmark model's pose presence as the
gate (at 0.3 the tiles of chelsea.png, a cat, give "people" of presence 0.96-0.99), and tiles
reaching past the border, black beyond it (they find the same cat).
"""
import numpy as np

MIN_PERSON_PX = 150      # issue 19: people at least ~150 px tall must be found
MIN_PERSON_FRACTION = 1 / 8   # ... or an eighth of the shorter side, when that is more
TILE_REACH = 3.0         # the detector finds people down to ~1/4 of its square (measured): 1/3
SAME_PERSON = 0.2        # median landmark distance / body size under which two are one person,
OVERLAP_BONUS = 0.3      # ... raised by this x the fraction of one's box inside the other's
MIN_VISIBILITY = 0.5     # a landmark counts as visible (MediaPipe's drawing threshold)
MIN_COMMON = 4           # visible in both candidates, else all 33 landmarks are compared
CONTAINED = 0.8          # of the smaller box inside the other's, one upside down: one person

# the 33 landmarks' left <-> right permutation (landmarks.NAMES' order)
FLIP = np.array([0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22,
                 21, 24, 23, 26, 25, 28, 27, 30, 29, 32, 31])


def min_person(width, height):
    """The smallest person (pixels tall) the tiles search for in a width x height photo."""
    return max(MIN_PERSON_PX, MIN_PERSON_FRACTION * min(width, height))


def tile_sides(width, height):
    """Tile sides in pixels, largest first: the shorter side, halved while the last is over
    TILE_REACH x min_person, the last no smaller than that."""
    finest = int(TILE_REACH * min_person(width, height))
    sides = [int(min(width, height))]
    while sides[-1] > finest:
        sides.append(max(sides[-1] // 2, finest))
    return sides if sides[0] > 0 else []


def _starts(length, side):
    """Tile starts along one axis: overlapping by half, the first at 0, the last at the end."""
    count = max(1, int(np.ceil((length - side) / (side / 2))) + 1)
    if count == 1:
        return [0]
    return [int(round(i * (length - side) / (count - 1))) for i in range(count)]


def tiles(width, height):
    """[(x0, y0, side)] square tiles inside the photo, every scale of tile_sides; a tile that
    is the whole photo (a square photo) is left out (the whole-photo pass sees it)."""
    out = []
    for side in tile_sides(width, height):
        for y0 in _starts(height, side):
            for x0 in _starts(width, side):
                if (side, side) != (width, height):
                    out.append((x0, y0, side))
    return out


def body_size(landmarks):
    """The longer side of the 33 landmarks' box (pixels): the person's size, cut parts
    included (BlazePose draws them where it guesses they are)."""
    xy = np.asarray(landmarks)[:, :2]
    return float(np.max(xy.max(0) - xy.min(0)))


def large_enough(landmarks, width, height):
    """True when a person found in a tile is at least min(min_person, a third of the photo's
    shorter side) tall: smaller ones are parts of a larger person seen as a person."""
    return body_size(landmarks) >= min(min_person(width, height), min(width, height) / 3.0)


def landmark_distance(a, b):
    """Median distance (pixels) of two candidates' landmarks (33, 5), over those both rate
    visible (all when fewer than MIN_COMMON are), the smaller of as-is and b mirrored."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    best = np.inf
    for other in (b, b[FLIP]):
        both = (a[:, 3] >= MIN_VISIBILITY) & (other[:, 3] >= MIN_VISIBILITY)
        if both.sum() < MIN_COMMON:
            both[:] = True
        d = np.linalg.norm(a[both, :2] - other[both, :2], axis=1)
        best = min(best, float(np.median(d)))
    return best


def _box(landmarks, width, height):
    xy = np.asarray(landmarks, np.float64)[:, :2]
    return np.clip(np.concatenate([xy.min(0), xy.max(0)]), 0, [width, height, width, height])


def contained(a, b, width, height):
    """The fraction of the smaller of the two landmarks' boxes (33 landmarks, clipped to the
    width x height photo) that lies inside the other."""
    ba, bb = _box(a, width, height), _box(b, width, height)
    inter = np.prod(np.clip(np.minimum(ba[2:], bb[2:]) - np.maximum(ba[:2], bb[:2]), 0, None))
    smaller = min(np.prod(ba[2:] - ba[:2]), np.prod(bb[2:] - bb[:2]))
    return float(inter / max(smaller, 1.0))


def upright(landmarks):
    """True when the nose lies above the feet (landmarks 27-32) in the photo."""
    xy = np.asarray(landmarks)[:, :2]
    return bool(xy[0, 1] < xy[27:33, 1].mean())


def same_person(a, b, width, height):
    """True when landmarks a and b (33, 5) in a width x height photo are one person:
    landmark_distance under (SAME_PERSON + OVERLAP_BONUS x contained) x the smaller
    body_size, or one's box at least CONTAINED inside the other's with one reading upside
    down against the other."""
    inside = contained(a, b, width, height)
    limit = (SAME_PERSON + OVERLAP_BONUS * inside) * min(body_size(a), body_size(b))
    return (landmark_distance(a, b) < limit
            or (inside >= CONTAINED and upright(a) != upright(b)))


def add_new(people, candidates, width, height, landmarks_of):
    """people + those of candidates (taken in order, best first) that are not the same person
    (same_person on landmarks_of(...)) as one of people or an earlier added candidate."""
    kept = list(people)
    for c in candidates:
        if not any(same_person(landmarks_of(c), landmarks_of(k), width, height) for k in kept):
            kept.append(c)
    return kept
