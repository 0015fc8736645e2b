"""Make the synthetic human dataset (rendered bodies with 2D/3D labels and body parameters).

    python tools/make_synth.py --out DIR --train N --test M --seed S [--body FILE] [--workers 2]
                               [--image-size 480] [--max-yaw 180]

DIR gets train/test TFRecord shards, the test images as JPEG files and DIR/synth_test.npz in
SPIN's Human3.6M npz layout (see data_pipelines/synthetic/writer.py). The same seed gives
identical files; DIR appears only when complete, and a rerun with the same arguments finds it
complete and exits 0 (or adds the train split to a folder that evaluation made with the test
split only). --body defaults to the cached Anny body model (built on first use).
"""
import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from data_pipelines.synthetic.writer import SPLITS, made_splits, read_meta  # noqa: E402
from data_pipelines.synthetic.writer import write_dataset  # noqa: E402
from pose_era.io import describe_os_error  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="dataset folder to create")
    parser.add_argument("--train", type=int, required=True, help="number of train images")
    parser.add_argument("--test", type=int, required=True, help="number of test images")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--body", help="body-model .npz (default: the cached Anny model)")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes (0: in this process)")
    parser.add_argument("--image-size", type=int, default=480, help="square image side, px")
    parser.add_argument("--max-yaw", type=float, default=180.0,
                        help="people face the camera turned by at most this many degrees "
                             "(default 180: any way)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts = {"train": args.train, "test": args.test}
    try:  # exist_ok: a complete set made with these arguments is left as it is
        todo = [s for s in SPLITS if counts[s] > 0 and (
            not Path(args.out).is_dir() or s not in made_splits(read_meta(args.out)))]
        out = write_dataset(args.out, args.train, args.test, args.seed, body_path=args.body,
                            workers=args.workers, image_size=args.image_size,
                            max_yaw=args.max_yaw, progress=not args.no_progress, exist_ok=True)
    except OSError as err:
        print(f"make_synth: {describe_os_error(err) if err.filename else err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"make_synth: {err}", file=sys.stderr)
        return 2
    if not todo:
        print(f"{out} is already complete (made with these arguments); nothing to do")
        return 0
    seconds = time.perf_counter() - start
    cpu = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                resource.getrusage(resource.RUSAGE_CHILDREN)))
    n = sum(counts[s] for s in todo)
    made = " + ".join(f"{counts[s]} {s}" for s in todo)
    print(f"wrote {out}: {made} images in {seconds:.1f} s = "
          f"{n / seconds:.1f} images/s with {args.workers} workers (start-up included); "
          f"CPU time {cpu:.1f} s = {1000 * cpu / n:.0f} ms per image, i.e. "
          f"{n / cpu:.1f} images/s per fully available core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
