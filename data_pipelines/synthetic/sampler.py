"""Random scene parameters for the synthetic dataset: shape, pose within anatomical joint limits,
camera and person placement, lighting, clothing colours and procedural backgrounds.

Everything here is NumPy driven by a `numpy.random.Generator`, so one example's draws depend only
on its own generator (the dataset derives one per (seed, split, index)).

Joint limits. Each joint's anatomical class and the axes of its three angles (ext, abd, rot)
come from `pose_era.body.anatomy`, the same for every body model; the ranges are the normal
active ranges of motion tabulated by the American Academy of Orthopaedic Surgeons (Greene &
Heckman 1994; Norkin & White, "Measurement of Joint Motion"), narrowed where a
linear-blend-skinned mesh breaks down (forearm twist, fingers), composed as
R = R_f(ext) R_a(abd) R_t(rot). Right-side joints mirror the left (abd and rot change sign). The
spine's and the neck's total ranges are split evenly over their joints. The glenohumeral
joint's angles are measured from the arm hanging at the side, whatever the rest pose.
"""
import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from pose_era.body import anatomy

# (ext, abd, rot) ranges in degrees for the LEFT side; see the module docstring for the signs.
JOINT_RANGES = {
    "hip": ((-120, 30), (-30, 45), (-45, 45)),
    "knee": ((0, 135), (0, 0), (-10, 10)),
    "ankle": ((-20, 50), (-35, 15), (-15, 15)),     # dorsi- (-) / plantar (+) flexion
    "toe": ((-40, 20), (0, 0), (0, 0)),
    "spine": ((-80, 30), (-35, 35), (-45, 45)),     # thoracolumbar total, split over joints
    "neck": ((-50, 60), (-45, 45), (-80, 80)),      # cervical total (neck + head joints)
    "clavicle": ((-15, 15), (-5, 30), (-5, 5)),     # retraction (+), elevation (+)
    "shoulder": ((-150, 50), (8, 150), (-90, 70)),  # from the arm hanging at the side
    "elbow": ((-145, 0), (0, 0), (-60, 60)),        # rot = pronation (+) / supination (-)
    "wrist": ((-60, 60), (-30, 30), (-10, 10)),
    "finger": ((-15, 15), (-10, 10), (0, 0)),
    "fixed": ((0, 0), (0, 0), (0, 0)),
}
SHARED_CLASSES = ("spine", "neck")
# Everyday poses (`poses="everyday"`, Skeleton.everyday_angles): how people stand, walk, sit and
# crouch in photos, the two legs together, each arm on its own. LEG_MODES: each mode's
# probability (its angles are in everyday_angles); ARM_MODES: probability, glenohumeral (ext,
# abd, rot) uniform ranges and elbow flexion range, degrees, LEFT side. JOINT_RANGES still clip.
LEG_MODES = {"stand": 0.4, "walk": 0.25, "sit": 0.25, "crouch": 0.1}
ARM_MODES = {
    "hang": (0.4, ((-15, 15), (8, 20), (-20, 20)), (0, 30)),
    "hold": (0.25, ((-70, -20), (8, 30), (-25, 25)), (60, 120)),   # something in front
    "hip": (0.1, ((0, 20), (30, 50), (-20, 20)), (80, 120)),       # hand on the hip
    "raise": (0.15, ((-150, -90), (8, 60), (-25, 25)), (0, 90)),
    "across": (0.1, ((-50, -20), (8, 8), (40, 70)), (90, 130)),    # arm across the body
}
# Clothing regions, and the region of each joint class's skin (by skinning-dominant joint).
REGIONS = ("skin", "shirt", "sleeve", "trousers", "leg", "shoe")
_CLASS_REGION = {"neck": "skin", "wrist": "skin", "finger": "skin", "fixed": "trousers",
            "root": "trousers", "hip": "trousers", "knee": "leg", "ankle": "shoe",
            "toe": "shoe", "spine": "shirt", "clavicle": "shirt", "shoulder": "shirt",
            "elbow": "sleeve"}


class Skeleton(anatomy.Anatomy):
    """A body model's anatomy (pose_era.body.anatomy) with the joint limits of pose sampling.

    joint_names (J,), parents (J,) with -1 at the root, rest_joints (J,3) of the mean body.
    """

    def __init__(self, joint_names, parents, rest_joints):
        super().__init__(joint_names, parents, rest_joints)
        self.ranges = self._ranges()


    def _ranges(self):
        """(J, 3, 2) radians; shared classes split evenly over their joints."""
        counts = {c: self.classes.count(c) for c in SHARED_CLASSES}
        out = np.zeros((len(self.names), 3, 2))
        for j, cls in enumerate(self.classes):
            if cls in JOINT_RANGES:
                r = np.deg2rad(np.array(JOINT_RANGES[cls], np.float64))
                out[j] = r / counts[cls] if cls in SHARED_CLASSES else r
        return out

    def local_rotations(self, angles):
        """(J, 3) (ext, abd, rot) radians, left-side convention -> (J, 3, 3) local rotations.

        The root's row is ignored (identity); right-side joints mirror the left.
        """
        angles = np.array(angles, np.float64)
        angles[self.sides < 0, 1:] *= -1
        f, a, t = (self.axes[:, :, k] * angles[:, k:k + 1] for k in range(3))
        r = (Rotation.from_rotvec(f) * Rotation.from_rotvec(a) * Rotation.from_rotvec(t))
        out = r.as_matrix() @ self.neutral
        out[self.parents < 0] = np.eye(3)
        return out

    def sample_angles(self, rng):
        """(J, 3) angles inside the limits: per example an activity level s in [0.2, 1] pulls
        every angle towards its joint's neutral value, then a truncated normal or a uniform."""
        lo, hi = self.ranges[..., 0], self.ranges[..., 1]
        neutral = np.clip(0.0, lo, hi)
        level = rng.uniform(0.2, 1.0)
        uniform = rng.uniform(lo, hi)
        normal = neutral + rng.normal(0.0, 0.35, lo.shape) * (hi - lo)
        pick = rng.random(lo.shape) < 0.5
        x = np.where(pick, uniform, np.clip(normal, lo, hi))
        return neutral + level * (x - neutral)

    def everyday_angles(self, rng):
        """(J, 3) angles of an everyday pose (LEG_MODES, ARM_MODES): the legs standing,
        walking, sitting or crouching together, each arm hanging, holding something in front,
        on the hip, raised or across the body; small jitter elsewhere. For measuring on poses
        like those in photos, where `sample_angles`' independent joints are rarely natural."""
        lo, hi = self.ranges[..., 0], self.ranges[..., 1]
        out = np.clip(0.0, lo, hi)
        joints = {(c, s): j for j, (c, s) in enumerate(zip(self.classes, self.sides))}
        for j, cls in enumerate(self.classes):
            if cls in SHARED_CLASSES:
                out[j] = np.deg2rad(rng.normal([-3, 0, 0], [6, 4, 8])) / self.classes.count(cls)
            elif cls in ("clavicle", "wrist", "ankle", "toe", "finger"):
                out[j] += 0.1 * rng.normal(0, 1, 3) * (hi[j] - lo[j])
        hips = [joints.get(("hip", s)) for s in (1, -1)]
        knees = [joints.get(("knee", s)) for s in (1, -1)]
        mode = rng.choice(list(LEG_MODES), p=list(LEG_MODES.values()))
        hip_ext, knee = {"stand": ((0, 5), (0, 10)), "walk": (None, None),
                         "sit": ((-85, 8), (90, 12)), "crouch": ((-65, 20), (95, 20))}[mode]
        # the pose both legs share when sitting or crouching (drawn for standing too, unused)
        shared = (rng.normal(*hip_ext), rng.normal(*knee)) if hip_ext else None
        stride = rng.uniform(10, 30) * rng.choice([-1, 1])
        for side, (h, k) in enumerate(zip(hips, knees)):
            if h is None or k is None:
                continue
            if mode == "walk":   # one thigh forward, the other back, the back knee bent more
                ext = stride * (-1 if side == 0 else 0.6)
                flex = rng.uniform(5, 25) if ext < 0 else rng.uniform(10, 45)
            elif mode == "stand":
                ext, flex = rng.normal(*hip_ext), rng.uniform(*knee)
            else:                # both legs alike, each a little off the shared pose
                ext, flex = shared[0] + rng.normal(0, 8), shared[1] + rng.normal(0, 10)
            out[h] = np.deg2rad([ext, rng.uniform(0, 15), rng.normal(0, 10)])
            out[k, 0] = np.deg2rad(flex)
        for side in (1, -1):
            shoulder, elbow = joints.get(("shoulder", side)), joints.get(("elbow", side))
            if shoulder is None or elbow is None:
                continue
            _, ranges, flexion = ARM_MODES[rng.choice(list(ARM_MODES),
                                                      p=[m[0] for m in ARM_MODES.values()])]
            out[shoulder] = np.deg2rad([rng.uniform(*r) for r in ranges])
            out[elbow, 0] = -np.deg2rad(rng.uniform(*flexion))
        return np.clip(out, lo, hi)

    def root_rotation(self, yaw, pitch, roll):
        """Global orientation: the body upright facing the camera (its left on the image's
        right, camera y down), turned by yaw about its up axis, pitched about its left axis
        and rolled about its forward axis (radians)."""
        body = np.stack([self.left, self.up, self.forward], axis=1)  # body axes -> model
        facing = np.diag([1.0, -1.0, -1.0])                          # body axes -> camera
        turn = Rotation.from_euler("YXZ", [yaw, pitch, roll]).as_matrix()
        return facing @ turn @ body.T

    def regions(self, weights):
        """(V,) index into REGIONS per vertex, from its skinning-dominant joint."""
        region = np.array([REGIONS.index(_CLASS_REGION.get(c, "skin")) for c in self.classes])
        return region[np.asarray(weights).argmax(axis=1)]


POSES = ("random", "everyday")


def sample_pose(skeleton, rng, max_yaw=180.0, poses="random"):
    """(J, 3) axis-angle pose (root first) of one random body, upright-ish, turned from facing
    the camera by a yaw uniform in [-max_yaw, max_yaw] degrees (180: facing any way); joint
    angles from `sample_angles` (poses="random", the training sets') or `everyday_angles`."""
    if poses not in POSES:
        raise ValueError(f"poses must be one of {POSES}, not {poses!r}")
    angles = skeleton.sample_angles(rng) if poses == "random" else skeleton.everyday_angles(rng)
    local = skeleton.local_rotations(angles)
    yaw = rng.uniform(-np.deg2rad(max_yaw), np.deg2rad(max_yaw))
    pitch = np.clip(rng.normal(0.0, np.deg2rad(10)), -np.deg2rad(30), np.deg2rad(30))
    roll = np.clip(rng.normal(0.0, np.deg2rad(7)), -np.deg2rad(20), np.deg2rad(20))
    local[0] = skeleton.root_rotation(yaw, pitch, roll)
    return Rotation.from_matrix(local).as_rotvec().astype(np.float32)


def sample_betas(num_betas, rng, sigma=1.0):
    """Shape coefficients ~ N(0, sigma) truncated at 3 sigma (the body file's betas have unit
    variance over its sampled phenotypes)."""
    return np.clip(rng.normal(0.0, sigma, num_betas), -3 * sigma, 3 * sigma).astype(np.float32)


def sample_camera(rng):
    """A full-image camera and where the pelvis stands in it.

    Returns K_full (3,3), and the pelvis position (3,) in the camera frame: a frame of a random
    aspect ratio and 640..1920 px long side, focal length sqrt(W^2+H^2) (CLIFF's default)
    times a factor in [0.75, 1.35], the pelvis 2.5..9 m away (log-uniform) at a random spot of
    the image's central part.
    """
    aspect = [(4, 3), (16, 9), (3, 4), (9, 16), (1, 1), (3, 2)][rng.integers(6)]
    long_side = rng.uniform(640, 1920)
    w = long_side if aspect[0] >= aspect[1] else long_side * aspect[0] / aspect[1]
    h = long_side if aspect[1] > aspect[0] else long_side * aspect[1] / aspect[0]
    focal = np.hypot(w, h) * rng.uniform(0.75, 1.35)
    K = np.array([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1]], np.float32)
    dist = np.exp(rng.uniform(np.log(2.5), np.log(9.0)))
    u, v = rng.uniform(0.25, 0.75) * w, rng.uniform(0.35, 0.65) * h
    pelvis = dist * np.array([(u - w / 2) / focal, (v - h / 2) / focal, 1.0])
    return K, pelvis.astype(np.float32)


def crop_box(points_2d, rng):
    """A person detector's square box [x0, y0, x1, y1] around projected body points (N,2):
    1.1..1.35 times the tight box's longer side (10% of boxes 0.85..1.1, cutting off limbs),
    its centre jittered by up to 5% of the size."""
    lo, hi = points_2d.min(axis=0), points_2d.max(axis=0)
    factor = rng.uniform(1.1, 1.35) if rng.random() >= 0.1 else rng.uniform(0.85, 1.1)
    size = float((hi - lo).max()) * factor
    centre = (lo + hi) / 2 + rng.uniform(-0.05, 0.05, 2) * size
    return np.concatenate([centre - size / 2, centre + size / 2]).astype(np.float32)


def sample_lighting(rng):
    """Shading keywords for renderer.shade: one directional light from the camera's side,
    mostly from above, slightly tinted, plus ambient light."""
    to_light = anatomy.unit(np.array([rng.uniform(-1, 1), rng.uniform(-1.0, 0.3), -rng.uniform(0.4, 1)]))
    tint = 1.0 + rng.uniform(-0.1, 0.1, 3)
    return {"light_dir": (-to_light).astype(np.float32), "ambient": float(rng.uniform(0.25, 0.5)),
            "diffuse": float(rng.uniform(0.5, 0.8)), "light_color": (tint / tint.max()).astype(
                np.float32)}


def _hsv(h, s, v):
    rgb = cv2.cvtColor(np.uint8([[[h * 179, s * 255, v * 255]]]), cv2.COLOR_HSV2RGB)
    return rgb[0, 0].astype(np.float32) / 255


def sample_appearance(region_ids, rng):
    """(V,3) per-vertex albedo from (V,) indices into REGIONS: a skin tone and clothes (shirt
    with long or short sleeves, trousers or shorts, shoes), with a little per-vertex noise."""
    skin = _hsv(rng.uniform(0.02, 0.09), rng.uniform(0.25, 0.6), rng.uniform(0.3, 0.95))
    shirt = _hsv(rng.random(), rng.uniform(0, 0.9), rng.uniform(0.15, 0.95))
    trousers = _hsv(rng.random(), rng.uniform(0, 0.7), rng.uniform(0.1, 0.8))
    shoe = _hsv(rng.random(), rng.uniform(0, 0.5), rng.uniform(0.05, 0.6))
    sleeve = shirt if rng.random() < 0.6 else skin
    leg = trousers if rng.random() < 0.75 else skin
    table = np.stack([skin, shirt, sleeve, trousers, leg, shoe])   # order of REGIONS
    albedo = table[region_ids] * (1 + rng.normal(0, 0.04, (len(region_ids), 1)))
    return np.clip(albedo, 0, 1).astype(np.float32)


def _noise(rng, size, octaves=4):
    """Value noise in [0,1]: random grids of growing resolution, bicubic-upsampled and summed."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = 2 ** (o + 2)
        grid = rng.random((cells, cells)).astype(np.float32)
        out += amp * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    out /= total
    return (out - out.min()) / max(float(np.ptp(out)), 1e-6)


def _colour(rng):
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _stripes(size, period, angle):
    """uint8 mask (size, size) of parallel stripes, drawn as thick lines."""
    mask = np.zeros((size, size), np.uint8)
    d = np.array([np.cos(angle), np.sin(angle)])
    n = np.array([-d[1], d[0]])
    centre = np.array([size / 2, size / 2])
    half = size
    for k in range(-int(size / period) - 1, int(size / period) + 2):
        c = centre + n * (k * period)
        p0, p1 = c - d * half, c + d * half
        cv2.line(mask, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), 255,
                 max(1, int(period / 2)))
    return mask


def sample_background(rng, size):
    """(size, size, 3) uint8 RGB: a gradient, value-noise or wall-and-floor base (made at low
    resolution and upsampled), random shapes, optional stripes or checker texture, blur.

    Drawn with OpenCV on uint8 images: the dataset's throughput depends on it."""
    low = 64
    yy, xx = (np.mgrid[0:low, 0:low].astype(np.float32) + 0.5) / low
    kind = rng.integers(4)
    c0, c1 = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
    if kind == 0:                                   # linear gradient
        ang = rng.uniform(0, 2 * np.pi)
        t = np.cos(ang) * xx + np.sin(ang) * yy
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == 1:                                 # radial gradient
        cx, cy = rng.uniform(0, 1, 2)
        t = np.clip(np.hypot(xx - cx, yy - cy) / rng.uniform(0.5, 1.2), 0, 1)
    elif kind == 2:                                 # coloured value noise
        t = _noise(rng, low)
    else:                                           # wall and floor split by a horizon
        horizon = rng.uniform(0.3, 0.8)
        t = (yy > horizon + rng.uniform(-0.1, 0.1) * (xx - 0.5)).astype(np.float32)
        t = np.clip(t + 0.3 * _noise(rng, low, 3) - 0.15, 0, 1)
    small = ((c0 + t[..., None] * (c1 - c0)) * 255).astype(np.uint8)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    for _ in range(rng.integers(0, 12)):            # random shapes
        colour = _colour(rng)
        shape = rng.integers(4)
        p = [int(x) for x in rng.integers(-size // 4, size + size // 4, 4)]
        if shape == 0:
            cv2.rectangle(img, (p[0], p[1]), (p[2], p[3]), colour, -1)
        elif shape == 1:
            cv2.circle(img, (p[0], p[1]), int(rng.integers(5, size // 3)), colour, -1)
        elif shape == 2:
            cv2.line(img, (p[0], p[1]), (p[2], p[3]), colour, int(rng.integers(1, 12)))
        else:
            pts = rng.integers(0, size, (int(rng.integers(3, 7)), 2)).astype(np.int32)
            cv2.fillPoly(img, [pts], colour)
    if rng.random() < 0.35:                         # stripes or checker texture
        period, angle = rng.uniform(8, 60), rng.uniform(0, np.pi)
        mask = _stripes(size, period, angle)
        if rng.random() < 0.5:
            mask = cv2.bitwise_xor(mask, _stripes(size, period, angle + np.pi / 2))
        tinted = cv2.addWeighted(img, 0.75, np.full_like(img, _colour(rng)), 0.25, 0)
        cv2.copyTo(tinted, mask, img)
    sigma = rng.uniform(0, 3)
    if sigma > 0.5:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return img
