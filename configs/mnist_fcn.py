"""FCN (dense 512-256-128-10, layer norm before each activation) on MNIST.

Data: MNIST from the Keras cache (~/.keras/datasets/mnist.npz; never downloaded).
Training as the ERA supplement: SGD momentum 0.9, batch 32, 100 epochs, lr 1e-4 x0.1 after
epochs 10, 20, ..., 60, L2 1e-3 on conv/dense kernels only (not ERA, not norms).

  python -m pose_era.train --config mnist_fcn --workdir runs/mnist_fcn
  python -m pose_era.train --config mnist_fcn:quick     # 1 epoch, a smoke test

Not run here (no MNIST in this machine's cache, no internet). Speed on a shared 2-core
Xeon CPU: 212 train steps/s with ReLU, 146 with ERA, so 100 epochs take about 0.2-0.4 h.
"""
from configs.common_classification import classification_config


def get_config(arg=None):
    return classification_config(
        arg, dataset="mnist", model="fcn", image_size=28, epochs=100, batch_size=32, lr=1e-4,
        boundaries=(10, 20, 30, 40, 50, 60))
