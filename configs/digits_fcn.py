"""FCN (dense 512-256-128-10, layer norm before each activation) on the embedded digits.

The offline default of the ERA supplement's sanity benchmarks: scikit-learn's 1,797 real 8x8
handwritten digits, upscaled to 16x16, 1,347 train / 450 test (fixed split).
SGD momentum 0.9, batch 32, lr 0.01 x0.1 at epochs 20 and 30, 40 epochs, L2 1e-3 on kernels.

  python -m pose_era.train --config digits_fcn --set model.activation=era
  python tools/classification_table.py        # all activations, 3 seeds, table

Result (3 seeds, mean ± std, docs/classification.md): 98.15 ± 0.26 % test accuracy with
ReLU, 98.15 ± 0.46 % with ERA swish-init degree 2, 98.00 ± 0.44 % with degree 4; about 18 s per
run on a shared 2-core Xeon CPU (the whole 14-row table: 17 min).
"""
from configs.common_classification import classification_config


def get_config(arg=None):
    return classification_config(
        arg, dataset="digits", model="fcn", image_size=16, epochs=40, batch_size=32, lr=0.01,
        boundaries=(20, 30), quick_epochs=10, log_every=50, ckpt_every=2000)
