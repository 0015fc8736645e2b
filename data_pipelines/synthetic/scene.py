"""One synthetic example from its seed: body, crop camera, rendered image and labels.

A chunk of examples shares one batched body-model forward (TensorFlow, pose_era.body); the
camera math is pose_era.geometry's; drawing, rendering and labelling are per example. Each
example draws from three generators spawned from its own SeedSequence (body/camera, look,
background), so adding a draw to one aspect leaves the others unchanged.
"""
import cv2
import numpy as np
import tensorflow as tf

from data_pipelines.synthetic import sampler
from pose_era import renderer
from pose_era import geometry

# Keypoint visibility codes stored in the records (COCO's convention).
OUTSIDE, OCCLUDED, VISIBLE = 0, 1, 2


def example_seed(seed, split, index):
    """The SeedSequence of example `index` of `split` ("train" / "test") for a dataset seed."""
    return np.random.SeedSequence([int(seed), {"train": 0, "test": 1}[split], int(index)])


def keypoint_visibility(points, uv, depth, tolerance):
    """COCO-style codes (N,) for camera-frame points (N,3) projected to uv (N,2), given the
    render's depth map (H,W) (inf where empty): OUTSIDE the image, OCCLUDED when the surface at
    its pixel is more than `tolerance` (N,) metres in front of it, else VISIBLE."""
    h, w = depth.shape
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h) & (
        points[:, 2] > 0)
    codes = np.full(len(points), OUTSIDE, np.int64)
    col = np.clip(np.floor(uv[:, 0]), 0, w - 1).astype(np.int64)
    row = np.clip(np.floor(uv[:, 1]), 0, h - 1).astype(np.int64)
    surface = depth[row, col]
    hidden = surface < points[:, 2] - tolerance
    codes[inside] = np.where(hidden[inside], OCCLUDED, VISIBLE)
    return codes


def composite(render, background, rng):
    """Person (a Render) over a uint8 background with softened silhouette edges, plus sensor
    noise -> uint8 RGB.

    The edge softening lowers alpha only on the person's border pixels (a blurred mask inside
    the mask), a cheap stand-in for anti-aliasing that leaves no halo outside. Blending runs on
    the person's bounding box only."""
    out = background.copy()
    rows, cols = np.flatnonzero(render.mask.any(1)), np.flatnonzero(render.mask.any(0))
    if rows.size:
        box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        mask = render.mask[box].astype(np.float32)
        alpha = np.clip(mask * cv2.GaussianBlur(mask, (0, 0), 0.8) * 1.5, 0, 1)[..., None]
        blend = out[box] * (1 - alpha) + render.image[box] * (255 * alpha) + 0.5
        out[box] = np.clip(blend, 0, 255).astype(np.uint8)
    noise = np.empty(out.shape, np.int16)
    cv2.setRNGSeed(int(rng.integers(2 ** 31)))      # OpenCV's generator, seeded from ours
    cv2.randn(noise, 0, float(rng.uniform(0, 5)))
    return cv2.add(out, noise, dtype=cv2.CV_8U)


class SceneMaker:
    """Makes examples with one body model: `make(seeds)` -> list of example dicts.

    Each example: `jpeg` bytes (RGB image, image_size square), `K` (3,3), `kp2d` (17,3) COCO-17
    crop pixels + visibility code, `j3d` (17,3) H36M-17 and `markers` (K,3) in the camera frame
    (metres), `betas` (S,), `pose` (J,3) axis-angle with the root orientation first, `transl`
    (3,) — all float32 and exactly what the body model turns into the rendered mesh.
    """

    def __init__(self, body, image_size=480, beta_sigma=1.0, max_yaw=180.0, poses="random"):
        missing = [k for k in ("h36m17", "coco17") if k not in body.keypoint_sets]
        if missing:
            raise ValueError(f"body model has no {' / '.join(missing)} keypoint regressor; "
                             f"build it with tools/build_body_model.py")
        self.body = body
        self.size = int(image_size)
        self.beta_sigma = float(beta_sigma)
        self.max_yaw = float(max_yaw)
        self.poses = poses   # sampler.POSES: "random" (the training sets') or "everyday"
        mean = np.zeros((1, body.num_betas), np.float32)
        rest_joints = body.rest_joints(mean)[0].numpy()
        self.skeleton = sampler.Skeleton(body.joint_names, body.parents, rest_joints)
        self.regions = self.skeleton.regions(body.arrays["weights"])
        self.root = int(np.flatnonzero(np.asarray(body.parents) < 0)[0])
        self.tolerance = self._keypoint_depths(mean) * 1.5 + 0.03

    def _keypoint_depths(self, mean):
        """How deep each COCO keypoint lies under the mean body's rest surface (metres):
        a joint inside a limb is hidden by its own limb's front by about this much."""
        rest = self.body(mean, tf.eye(3, batch_shape=[1, self.body.num_joints]),
                         tf.zeros((1, 3)))
        verts, kp = rest["vertices"][0].numpy(), rest["coco17"][0].numpy()
        d = np.linalg.norm(kp[:, None] - verts[None], axis=-1)
        return d.min(axis=1).astype(np.float32)

    def draw(self, seq):
        """The random parameters of one example from its SeedSequence."""
        body_rng, look_rng, bg_rng = (np.random.default_rng(s) for s in seq.spawn(3))
        betas = sampler.sample_betas(self.body.num_betas, body_rng, self.beta_sigma)
        pose = sampler.sample_pose(self.skeleton, body_rng, self.max_yaw, self.poses)
        K_full, pelvis = sampler.sample_camera(body_rng)
        return {"betas": betas, "pose": pose, "K_full": K_full, "pelvis": pelvis,
                "box_rng": body_rng, "look_rng": look_rng, "bg_rng": bg_rng}

    def make(self, seqs, imgnames):
        """Examples for a list of SeedSequences (one batched body forward)."""
        draws = [self.draw(s) for s in seqs]
        betas = np.stack([d["betas"] for d in draws])
        pose = np.stack([d["pose"] for d in draws])
        K_full = np.stack([d["K_full"] for d in draws])
        pelvis = np.stack([d["pelvis"] for d in draws])
        rest_root = self.body.rest_joints(betas)[:, self.root].numpy()
        transl = (pelvis - rest_root).astype(np.float32)   # puts the root joint at `pelvis`
        out = self.body.from_labels(betas, pose, transl)  # the labels written are these
        verts = out["vertices"]
        uv_full = geometry.project(verts, K_full).numpy()
        boxes = np.stack([sampler.crop_box(uv, d["box_rng"]) for uv, d in zip(uv_full, draws)])
        K = geometry.crop_intrinsics(tf.constant(K_full), tf.constant(boxes), self.size)
        kp = geometry.project(out["coco17"], K).numpy()
        K, verts, coco = K.numpy(), verts.numpy(), out["coco17"].numpy()
        h36m, markers = out["h36m17"].numpy(), out["markers"].numpy()
        examples = []
        for i, d in enumerate(draws):
            frags = renderer.rasterize(verts[i], self.body.faces, K[i], self.size, self.size)
            look = d["look_rng"]
            shading = sampler.sample_lighting(look)
            albedo = sampler.sample_appearance(self.regions, look)
            render = renderer.shade(verts[i], self.body.faces, frags, colors=albedo, **shading)
            background = sampler.sample_background(d["bg_rng"], self.size)
            image = composite(render, background, look)
            quality = int(look.integers(80, 96))
            ok, jpeg = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise RuntimeError("OpenCV could not encode a JPEG image")
            vis = keypoint_visibility(coco[i], kp[i], frags.depth, self.tolerance)
            examples.append({
                "jpeg": jpeg.tobytes(), "imgname": imgnames[i], "K": K[i],
                "kp2d": np.concatenate([kp[i], vis[:, None]], 1).astype(np.float32),
                "j3d": h36m[i], "markers": markers[i], "betas": betas[i], "pose": pose[i],
                "transl": transl[i]})
        return examples
