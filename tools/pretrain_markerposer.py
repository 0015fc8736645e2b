"""Pre-train the MarkerPoser on synthetic bodies of the body model and save its weights (.npz).

    python tools/pretrain_markerposer.py --out cache/markerposer/anny_m64.npz [--steps 20000]
    python -m pose_era.train --config mixer_64 --set model.markerposer.weights=cache/markerposer/anny_m64.npz

Prints the root-relative joint error (mm) on fresh random bodies before and after training, next
to the mean-pose baseline (models/markerposer_pretrain.py says what each number means), and writes
them to <out>.json (with the arguments). The hidden sizes, activation, --act_norm and
--canonical_frame must match config.model.markerposer.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import markerposer as mp  # noqa: E402
from models import markerposer_pretrain as pre  # noqa: E402
from pose_era import io  # noqa: E402
from pose_era.body import BodyModel, default_body_model_path  # noqa: E402
from pose_era.era import ACTIVATIONS  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="weights file to write (.npz)")
    p.add_argument("--body", default="", help="body-model .npz ('' = the cached Anny model)")
    p.add_argument("--num_markers", type=int, default=64)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--noise", type=float, default=0.01, help="marker noise std, metres")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", default="1024,512,256", help="comma-separated hidden sizes")
    p.add_argument("--activation", default="relu",
                   choices=ACTIVATIONS)
    p.add_argument("--act_norm", action="store_true", help="layer norm before each activation")
    p.add_argument("--canonical_frame", action="store_true",
                   help="turn the markers into the mean body's frame first (Kabsch; "
                        "config model.markerposer.canonical_frame=true)")
    p.add_argument("--eval_num", type=int, default=2048)
    args = p.parse_args(argv)
    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
        if args.steps < 1 or args.batch < 1:
            raise ValueError("--steps and --batch must be >= 1")
        body = BodyModel.load(args.body or default_body_model_path(args.num_markers))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    layer = mp.new_markerposer(body, hidden=hidden, activation=args.activation,
                               act_norm=args.act_norm,
                               canonical_frame=args.canonical_frame)
    print(f"MarkerPoser: {layer.count_params():,} parameters, {body.num_markers} markers -> "
          f"{body.num_joints} joints, {body.num_betas} betas")
    result = {"before": pre.evaluate_markerposer(layer, body, num=args.eval_num)}
    print("before:", result["before"], flush=True)
    start = time.time()
    pre.pretrain_markerposer(body, args.steps, args.batch, args.noise, args.seed, args.lr, layer,
                             log_every=max(1, args.steps // 20))
    result["train_seconds"] = round(time.time() - start, 1)
    result["clean"] = pre.evaluate_markerposer(layer, body, num=args.eval_num)
    result["noisy"] = pre.evaluate_markerposer(layer, body, num=args.eval_num, noise=args.noise)
    result["args"] = vars(args)
    print("after, clean markers:", result["clean"])
    print(f"after, markers with {args.noise} m noise:", result["noisy"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mp.save_weights(layer, out)
    io.write_json(out.with_suffix(".json"), result)
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
