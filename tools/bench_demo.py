"""The demo's numbers on rendered people: detection rate, PA-MPJPE before/after the fit, time.

Usage:
    python tools/bench_demo.py --ckpt WORKDIR [--n 32] [--seed 0] [--steps 100] [--cut F]
                               [--poses random|everyday]

Renders the first N test scenes of the synthetic dataset with seed S (exactly the images of
`make_synth --seed S`'s test split: data_pipelines/synthetic/scene.py, the checkpoint's body
model, 480x480 with their known camera K) and runs the demo's pipeline (eval/demo.py) on each:
- detection: BlazePose finds a person whose box centre lies inside the ground-truth keypoints'
  box;
- PA-MPJPE (mm, H36M-17 -> 14 LSP joints, eval.metrics) of the network alone and after the fit,
  (a) on the dataset's crop fitted to the ground-truth COCO-17 keypoints, (b) on the detector's
  crop fitted to BlazePose's keypoints (detected images only); a keypoint-fed network
  (model.keypoint_input) reads BlazePose's keypoints in both crops (none where it found nobody),
  as in the demo;
- after the fit to detected 2D: the median distance (photo pixels) of the fitted body's
  projected COCO-17 keypoints from the true ones inside the photo, and the share of the true
  keypoints outside the photo that it projects outside too (with --cut);
- time per image of detection + landmarks + network + fit (the demo without file writing).
--cut F cuts each photo F x the body's height (its keypoints' extent) below its lower hip
(negative: above it), so the legs lie outside: a portrait or a half body with ground truth.
--poses everyday draws the bodies' joint angles from everyday poses (standing, walking, sitting,
crouching; arms hanging, holding, on the hip, raised, across: sampler.everyday_angles) instead
of the training sets' independent random joints; the scenes are otherwise the same draws.
Prints a Markdown table.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from data_pipelines.synthetic.sampler import POSES  # noqa: E402
from data_pipelines.synthetic.scene import SceneMaker, example_seed  # noqa: E402
from eval import demo  # noqa: E402
from eval.blazepose import BlazePose, landmarks  # noqa: E402
from eval.fitting import FitOptions, Fitter  # noqa: E402
from eval.metrics import pa_mpjpe  # noqa: E402
from models.pose_net import takes_keypoints  # noqa: E402
from pose_era import constants  # noqa: E402
from pose_era.body import body_model_of  # noqa: E402
from training import checkpoints  # noqa: E402

SIZE = 480


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=FitOptions.steps)
    parser.add_argument("--cut", type=float, help="cut the photos this x the body's height "
                        "below the hips")
    parser.add_argument("--poses", choices=POSES, default="random",
                        help="the bodies' joint angles: the training sets' or everyday poses")
    args = parser.parse_args(argv)
    config, model, step = checkpoints.restore(args.ckpt)
    body, size = body_model_of(config), int(config.data.image_size)
    maker = SceneMaker(body, image_size=SIZE, poses=args.poses)
    fitter = Fitter(body, size, options=FitOptions(steps=args.steps,
                                                   global_steps=args.steps // 4))
    pipe = demo.Pipeline(model, size, BlazePose(), fitter)
    whole = (SIZE / 2 - SIZE / 2.4, SIZE / 2 - SIZE / 2.4, SIZE / 1.2, SIZE / 1.2)  # crop = image
    rows = {k: [] for k in ("gt_net", "gt_fit", "det_net", "det_fit", "in_px", "kept_out")}
    found, times = 0, []
    for i in range(args.n):
        ex = maker.make([example_seed(args.seed, "test", i)], [str(i)])[0]
        rgb = demo.read_image_bytes(ex["jpeg"])
        gt, kp = ex["j3d"][None], ex["kp2d"].copy()
        if args.cut is not None:
            hips = kp[[constants.COCO17_NAMES.index(f"{s}_hip") for s in ("left", "right")], 1]
            rgb = rgb[:int(np.clip(hips.max() + args.cut * np.ptp(kp[:, 1]), 1, SIZE))]
        inside = (kp[:, 2] > 0) & (kp[:, 1] < len(rgb))
        kp[:, 2] = inside
        started = time.perf_counter()
        people = pipe(rgb, K_full=ex["K"])
        times.append(time.perf_counter() - started)
        lo, hi = ex["kp2d"][:, :2].min(0), ex["kp2d"][:, :2].max(0)
        hit = [p for p in people if np.all((lo <= np.add(p.box[:2], np.divide(p.box[2:], 2)))
                                           & (np.add(p.box[:2], np.divide(p.box[2:], 2)) <= hi))]
        # A keypoint-fed network reads BlazePose's keypoints in the dataset's crop too.
        lm = hit[0].landmarks if hit else None
        absent = None if lm is None else lm.coco17_presence() < landmarks.MIN_PRESENCE
        crop, K_crop, pred = pipe.predict(rgb, whole, ex["K"],
                                          None if lm is None else lm.coco17(), absent)
        fitted, _ = pipe.fit(pred, K_crop, crop, kp, image_shape=rgb.shape)
        rows["gt_net"].append(pa_mpjpe(pred["h36m17"][None], gt)[0])
        rows["gt_fit"].append(pa_mpjpe(fitted["h36m17"][None], gt)[0])
        if hit:
            found += 1
            rows["det_net"].append(pa_mpjpe(hit[0].network["h36m17"][None], gt)[0])
            rows["det_fit"].append(pa_mpjpe(hit[0].pred["h36m17"][None], gt)[0])
            uv = demo.project(hit[0].pred["coco17"], ex["K"])
            rows["in_px"].append(np.median(np.linalg.norm(uv[inside] - kp[inside, :2], axis=1)))
            rows["kept_out"] += list(uv[~inside & (kp[:, 1] >= len(rgb)), 1] >= len(rgb))
    mean = {k: float(np.mean(v)) if v else float("nan") for k, v in rows.items()}
    setting = "" if args.cut is None else f", photos cut {args.cut:+g} x body height below the hips"
    setting += ", everyday poses" if args.poses == "everyday" else ""
    fed = (", keypoint-fed: the network reads BlazePose's keypoints in both crops (none where "
           "it found nobody)") if takes_keypoints(model) else ""
    print(f"checkpoint {args.ckpt} (step {step}), {args.n} synthetic test scenes (seed "
          f"{args.seed}), fit {args.steps} steps{setting}{fed}\n")
    print("| detection rate | PA-MPJPE network (GT crop) | after fit to GT 2D | "
          "network (detector crop) | after fit to detected 2D | 2D error in the photo | "
          "out-of-photo keypoints kept out | demo time / image |")
    print("|---|---|---|---|---|---|---|---|")
    kept = f"{mean['kept_out']:.0%} of {len(rows['kept_out'])}" if rows["kept_out"] else "-"
    print(f"| {found}/{args.n} | {mean['gt_net']:.1f} | {mean['gt_fit']:.1f} | "
          f"{mean['det_net']:.1f} | {mean['det_fit']:.1f} | {mean['in_px']:.1f} px | {kept} | "
          f"{np.median(times[1:] or times):.2f} s (first {times[0]:.2f} s) |")


if __name__ == "__main__":
    main()
