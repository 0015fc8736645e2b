"""CNN (2 conv 3x3x64 with instance norm, max pool, dense 128, dense 10) on the embedded digits.

The offline default of the ERA supplement's sanity benchmarks: scikit-learn's 1,797 real 8x8
handwritten digits, upscaled to 16x16, 1,347 train / 450 test (fixed split).
SGD momentum 0.9, batch 32, lr 0.01 x0.1 at epochs 8 and 12, 15 epochs, L2 1e-3 on kernels.

  python -m pose_era.train --config digits_cnn --set model.activation=era
  python tools/classification_table.py        # all activations, 3 seeds, table

Result (3 seeds, mean ± std, docs/classification.md): 98.67 ± 0.59 % test accuracy with
ReLU, 98.37 ± 0.56 % with ERA swish-init degree 2, 98.52 ± 0.13 % with degree 4; about 30 s per
run on a shared 2-core Xeon CPU (the whole 14-row table: 17 min).
"""
from configs.common_classification import classification_config


def get_config(arg=None):
    return classification_config(
        arg, dataset="digits", model="cnn", image_size=16, epochs=15, batch_size=32, lr=0.01,
        boundaries=(8, 12), quick_epochs=4, log_every=50, ckpt_every=2000)
