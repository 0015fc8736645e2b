"""Plot every ERA layer of a trained model, one PNG per layer.

Each figure shows the learned function against its initialisation, its derivative, and the
density of the layer's pre-activations shaded behind (as the ERA paper's figures).

Usage: python tools/plot_era.py --ckpt WORKDIR_OR_CKPT_PREFIX [--out DIR] [--batches N]

The model and its config come from training.checkpoints.restore; the pre-activations from the
first N batches of the task's evaluation data. PNGs go to DIR (default: WORKDIR/era_plots).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _model_inputs(batch):
    """The model's inputs in a dataset element: (inputs, targets[, weights]) or, for the pose
    task, a dict of schema examples (the model reads image and K)."""
    if isinstance(batch, dict):
        from eval.pose_eval import MODEL_INPUTS
        return {k: batch[k] for k in MODEL_INPUTS}
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, type=Path,
                        help="a training workdir or a checkpoint prefix")
    parser.add_argument("--out", type=Path, help="output folder (default WORKDIR/era_plots)")
    parser.add_argument("--batches", type=int, default=1,
                        help="evaluation batches used for the pre-activation densities")
    args = parser.parse_args(argv)
    ckpt = args.ckpt
    if not (ckpt.exists() or Path(f"{ckpt}.index").exists()):
        print(f"plot_era: checkpoint {ckpt} not found; pass a training workdir or a checkpoint "
              "prefix", file=sys.stderr)
        return 2

    import tensorflow as tf

    from training import checkpoints, tasks
    from pose_era.era.plot import plot_era_layers

    try:
        config, model, step = checkpoints.restore(str(ckpt))
        dataset = tasks.get(config.task)(config).eval_dataset()
        batches = [_model_inputs(b) for b in dataset.take(max(1, args.batches))]
        sample = tf.nest.map_structure(lambda *t: tf.concat(t, axis=0), *batches)
        workdir = ckpt if ckpt.is_dir() else ckpt.parent.parent
        paths = plot_era_layers(model, sample, args.out or workdir / "era_plots")
    except (ValueError, FileNotFoundError) as err:
        print(f"plot_era: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    print(f"plot_era: {len(paths)} ERA layer(s) plotted at step {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
