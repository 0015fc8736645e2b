"""How well the demo's person box works: OpenCV's HOG detector on synthetic scenes.

Usage:
    python tools/bench_demo.py [--n 32] [--seed 0]

Renders N synthetic test scenes (data_pipelines/synthetic/scene.py, the default Anny body) and
runs tools/demo.py's detector on each, twice: on the 480x480 crop as the dataset stores it (the
person fills most of the frame) and pasted into the middle of a grey 960x720 "photo". A crop is
good when it holds at least 80% of the person's COCO keypoints and the person spans at least half
of it. Prints detection and good-crop counts, and the detector's time per image.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from data_pipelines.synthetic.scene import SceneMaker, example_seed  # noqa: E402
from pose_era.body import BodyModel, default_body_model_path  # noqa: E402
from tools import demo  # noqa: E402


def good_crop(person, keypoints):
    """The crop tools/demo.py makes from `person` holds the keypoints and is not too loose."""
    box = demo.crop_box(person)
    inside = ((keypoints >= box[:2]) & (keypoints <= box[2:])).all(1).mean()
    return inside >= 0.8 and np.ptp(keypoints, axis=0).max() >= 0.5 * (box[2] - box[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    maker = SceneMaker(BodyModel.load(default_body_model_path()), image_size=480)
    examples = maker.make([example_seed(args.seed, "test", i) for i in range(args.n)],
                          [str(i) for i in range(args.n)])
    stats = {"crop": [0, 0, []], "photo": [0, 0, []]}
    for ex in examples:
        rgb = cv2.imdecode(np.frombuffer(ex["jpeg"], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        rgb = rgb.astype(np.float32) / 255
        photo = np.full((720, 960, 3), 0.5, np.float32)
        photo[120:600, 240:720] = rgb
        kp = ex["kp2d"][:, :2]
        for name, image, points in (("crop", rgb, kp), ("photo", photo, kp + [240, 120])):
            started = time.perf_counter()
            person = demo.detect_person(image)
            stats[name][2].append(time.perf_counter() - started)
            if person is not None:
                stats[name][0] += 1
                stats[name][1] += bool(good_crop(person, points))
    for name, (found, good, times) in stats.items():
        print(f"{name:6s} detections {found}/{args.n}  good crops {good}/{args.n}  "
              f"{np.mean(times):.2f} s/image")


if __name__ == "__main__":
    main()
