"""The demo's numbers on rendered people: detection rate, PA-MPJPE before/after the fit, time.

Usage:
    python tools/bench_demo.py --ckpt WORKDIR [--n 32] [--seed 0] [--steps 200]

Renders the first N test scenes of the synthetic dataset with seed S (exactly the images of
`make_synth --seed S`'s test split: data_pipelines/synthetic/scene.py, the checkpoint's body
model, 480x480 with their known camera K) and runs the demo's pipeline (eval/demo.py) on each:
- detection: BlazePose finds a person whose box centre lies inside the ground-truth keypoints'
  box;
- PA-MPJPE (mm, H36M-17 -> 14 LSP joints, eval.metrics) of the network alone and after the fit,
  (a) on the dataset's crop fitted to the ground-truth COCO-17 keypoints, (b) on the detector's
  crop fitted to BlazePose's keypoints (detected images only);
- time per image of detection + landmarks + network + fit (the demo without file writing).
Prints a Markdown table.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from data_pipelines.synthetic.scene import SceneMaker, example_seed  # noqa: E402
from eval import demo  # noqa: E402
from eval.blazepose import BlazePose  # noqa: E402
from eval.fitting import FitOptions, Fitter  # noqa: E402
from eval.metrics import pa_mpjpe  # noqa: E402
from pose_era.body import body_model_of  # noqa: E402
from training import checkpoints  # noqa: E402

SIZE = 480


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    config, model, step = checkpoints.restore(args.ckpt)
    body, size = body_model_of(config), int(config.data.image_size)
    maker = SceneMaker(body, image_size=SIZE)
    fitter = Fitter(body, size, options=FitOptions(steps=args.steps,
                                                   global_steps=args.steps // 4))
    pipe = demo.Pipeline(model, size, BlazePose(), fitter)
    whole = (SIZE / 2 - SIZE / 2.4, SIZE / 2 - SIZE / 2.4, SIZE / 1.2, SIZE / 1.2)  # crop = image
    rows = {k: [] for k in ("gt_net", "gt_fit", "det_net", "det_fit")}
    found, times = 0, []
    for i in range(args.n):
        ex = maker.make([example_seed(args.seed, "test", i)], [str(i)])[0]
        rgb = demo.read_image_bytes(ex["jpeg"])
        gt, kp = ex["j3d"][None], ex["kp2d"].copy()
        kp[:, 2] = kp[:, 2] > 0
        crop, K_crop, pred = pipe.predict(rgb, whole, ex["K"])
        fitted, _ = pipe.fit(pred, K_crop, crop, kp)
        rows["gt_net"].append(pa_mpjpe(pred["h36m17"][None], gt)[0])
        rows["gt_fit"].append(pa_mpjpe(fitted["h36m17"][None], gt)[0])
        started = time.perf_counter()
        people = pipe(rgb, K_full=ex["K"])
        times.append(time.perf_counter() - started)
        lo, hi = ex["kp2d"][:, :2].min(0), ex["kp2d"][:, :2].max(0)
        hit = [p for p in people if np.all((lo <= np.add(p.box[:2], np.divide(p.box[2:], 2)))
                                           & (np.add(p.box[:2], np.divide(p.box[2:], 2)) <= hi))]
        if hit:
            found += 1
            rows["det_net"].append(pa_mpjpe(hit[0].network["h36m17"][None], gt)[0])
            rows["det_fit"].append(pa_mpjpe(hit[0].pred["h36m17"][None], gt)[0])
    mean = {k: float(np.mean(v)) if v else float("nan") for k, v in rows.items()}
    print(f"checkpoint {args.ckpt} (step {step}), {args.n} synthetic test scenes (seed "
          f"{args.seed}), fit {args.steps} steps\n")
    print("| detection rate | PA-MPJPE network (GT crop) | after fit to GT 2D | "
          "network (detector crop) | after fit to detected 2D | demo time / image |")
    print("|---|---|---|---|---|---|")
    print(f"| {found}/{args.n} | {mean['gt_net']:.1f} | {mean['gt_fit']:.1f} | "
          f"{mean['det_net']:.1f} | {mean['det_fit']:.1f} | "
          f"{np.median(times[1:] or times):.2f} s (first {times[0]:.2f} s) |")


if __name__ == "__main__":
    main()
