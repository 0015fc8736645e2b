"""BlazePose's 2D keypoints against the truth: the parameters of the training keypoint noise.

Usage:
    python tools/keypoint_noise.py [--scenes 48] [--seed 0] [--crops 0] [--data DIR]
                                   [--photos] [--out FILE]

A keypoint-fed network (model.keypoint_input) is trained on the true 2D keypoints corrupted to
look like BlazePose's (data_pipelines/keypoint_noise.py); this tool measures what that means.
Sources (each estimated on its own, `keypoint_noise.estimate`):
--scenes N   the first N test scenes of the synthetic set of seed S rendered at 480x480 (the
             images of tools/bench_demo.py): BlazePose as the demo runs it on a photo
             (eval.demo.Pipeline.people, most confident person), found when its box centre lies
             inside the true keypoints' box. The config's noise comes from this source.
--crops N    the first N images of a synthetic test split (--data, default the released
             model's 160 px set): what `eval.keypoints=blazepose` gives the network in
             `python -m eval.h36m` (eval/keypoint_input.py), on images 3x smaller.
--photos     the real-photo set (eval/real_photos, `make photos`) against its hand annotations,
             every person (matched as tools/eval_photos.py matches them); `lr_ambiguous`
             people are scored against the better of the annotation and its mirror.
Keypoints count as given by the demo's rule (eval.demo.network_keypoints: visibility >= 0.5,
presence >= 0.5, inside the photo). Sizes are the longer side of the box around the labelled
(true) keypoints, or the annotated box. Prints, per source, the noise model's parameters and
the median error per keypoint (fractions of the size); --out writes them as JSON.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from data_pipelines import keypoint_noise  # noqa: E402
from pose_era import constants  # noqa: E402

SIZE = 480
GROUPS = (("face", (0, 1, 2, 3, 4)), ("shoulders", (5, 6)), ("elbows", (7, 8)),
          ("wrists", (9, 10)), ("hips", (11, 12)), ("knees", (13, 14)), ("ankles", (15, 16)))


def _size(uv, labelled):
    pts = uv[labelled]
    return float(np.ptp(pts, axis=0).max()) if len(pts) >= 2 else float("nan")


def _given(pipeline, rgb, lm):
    """(17, 2) photo pixels, (17,) bool: BlazePose's keypoints and which the demo gives."""
    from eval import demo
    from eval.blazepose import landmarks
    h, w = rgb.shape[:2]
    kp = lm.coco17()
    absent = lm.coco17_presence() < landmarks.MIN_PRESENCE
    side = float(max(w, h))
    given = demo.network_keypoints(kp, absent, np.array([0, 0, side, side], np.float32),
                                   side, rgb.shape)
    return kp[:, :2], given[:, 2] > 0


def scenes(n, seed, blazepose):
    from data_pipelines.synthetic.scene import SceneMaker, example_seed
    from eval import demo
    from pose_era.body import BodyModel, default_body_model_path
    maker = SceneMaker(BodyModel.load(default_body_model_path()), image_size=SIZE)
    pipeline = demo.Pipeline(None, SIZE, blazepose)
    rows = []
    for i in range(n):
        ex = maker.make([example_seed(seed, "test", i)], [str(i)])[0]
        rgb = demo.read_image_bytes(ex["jpeg"])
        truth, labelled = ex["kp2d"][:, :2], ex["kp2d"][:, 2] > 0
        lo, hi = truth[labelled].min(0), truth[labelled].max(0)
        hit = [lm for box, _, lm in pipeline.people(rgb)
               if np.all((lo <= np.add(box[:2], np.divide(box[2:], 2)))
                         & (np.add(box[:2], np.divide(box[2:], 2)) <= hi))]
        detected, seen = _given(pipeline, rgb, hit[0]) if hit else (np.zeros((17, 2)),
                                                                     np.zeros(17, bool))
        rows.append((detected, seen, truth, labelled, _size(truth, labelled), bool(hit)))
    return rows


def crops(n, data, blazepose):
    from data_pipelines import h36m, schema
    from eval.keypoint_input import BlazePoseOnImages, true_keypoints
    from pose_era.body import BodyModel, default_body_model_path
    body = BodyModel.load(default_body_model_path())
    src = h36m.source(str(Path(data) / "synth_test.npz"), str(data), 160,
                      schema.LabelSizes.from_body_model(body))
    source = BlazePoseOnImages(blazepose)
    rows = []
    for batch in src.examples(src.records(), len(src)).take(n).batch(32):
        truth = true_keypoints(batch, body)
        for image, kp2d in zip(batch["image"].numpy(), truth):
            size = image.shape[0]
            nobody = source.counts["nobody"]
            given = source.one(np.clip(np.round(image * 255), 0, 255).astype(np.uint8))
            labelled = kp2d[:, 2] > 0
            rows.append((given[:, :2] * size, given[:, 2] > 0, kp2d[:, :2], labelled,
                         _size(kp2d[:, :2], labelled), source.counts["nobody"] == nobody))
    print(f"crops: BlazePose found the person with its detector in {source.counts['detector']}, "
          f"on the whole image in {source.counts['whole_image']}, nowhere in "
          f"{source.counts['nobody']} of {source.counts['images']}")
    return rows


def photos(blazepose):
    from eval import demo, photo_eval, photo_set
    rows = []
    for photo in photo_set.load_annotations():
        if not photo["people"]:
            continue
        rgb = demo.read_image(photo_set.locate(photo, photo_set.photo_dirs()))
        h, w = rgb.shape[:2]
        pipeline = demo.Pipeline(None, SIZE, blazepose)
        people = pipeline.people(rgb, all_people=True)
        pairs = photo_eval.match([p["box"] for p in photo["people"]],
                                 [[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b, _, _ in people],
                                 w, h)
        for person, (j, _) in zip(photo["people"], pairs):
            truth, labelled = np.zeros((17, 2)), np.zeros(17, bool)
            for name, uv in person["keypoints"].items():
                k = constants.COCO17_NAMES.index(name)
                truth[k], labelled[k] = uv, True
            x0, y0, x1, y1 = person["box"]
            size = float(max(x1 - x0, y1 - y0))
            if j is None:
                rows.append((np.zeros((17, 2)), np.zeros(17, bool), truth, labelled, size, False))
                continue
            detected, seen = _given(pipeline, rgb, people[j][2])
            if person.get("lr_ambiguous"):
                flip = list(constants.COCO17_FLIP_PERM)
                mask = seen & labelled

                def err(d, m):
                    return np.linalg.norm(d - truth, axis=1)[m].sum()
                if err(detected[flip], seen[flip] & labelled) < err(detected, mask):
                    detected, seen = detected[flip], seen[flip]
            rows.append((detected, seen, truth, labelled, size, True))
    return rows


def report(name, rows):
    detected, seen, truth, labelled, size, found = (np.array(c) for c in zip(*rows))
    est = keypoint_noise.estimate(detected, seen, truth, labelled, size, found)
    c = est["counts"]
    print(f"\n## {name}: {c['people']} people, {c['found']} found, {c['mirrored']} mirrored; "
          f"{c['keypoints_seen']} of {c['keypoints_labelled']} labelled keypoints given, "
          f"{c['gross']} gross, {c['swaps']} of {c['pairs']} pairs swapped\n")
    print("| keypoints | sigma (per coordinate) | median error | drop | bias (u, v) |")
    print("|---|---|---|---|---|")
    for group, idx in GROUPS:
        med = np.nanmean([est["median"][k] for k in idx])
        bias = np.nanmean([est["bias"][k] for k in idx], axis=0)
        print(f"| {group} | {np.nanmean([est['sigma'][k] for k in idx]):.4f} | {med:.4f} | "
              f"{np.nanmean([est['drop'][k] for k in idx]):.3f} | "
              f"({bias[0]:+.4f}, {bias[1]:+.4f}) |")
    print(f"\nmissed {est['missed']:.3f}, mirror {est['mirror']:.3f}, swap {est['swap']:.3f}, "
          f"gross {est['gross']:.3f} (sigma {est['gross_sigma']:.3f}); units: the person's size")
    return est


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crops", type=int, default=0)
    parser.add_argument("--data", default="cache/synth/40960_1024_1_160")
    parser.add_argument("--photos", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    from eval.blazepose import BlazePose
    blazepose = BlazePose()
    results = {}
    if args.scenes:
        results["scenes"] = report(f"{args.scenes} rendered test scenes (seed {args.seed}), "
                                   f"{SIZE} px", scenes(args.scenes, args.seed, blazepose))
    if args.crops:
        results["crops"] = report(f"{args.crops} test crops of {args.data}",
                                  crops(args.crops, args.data, blazepose))
    if args.photos:
        results["photos"] = report("the real-photo set", photos(blazepose))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
