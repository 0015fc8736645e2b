"""FCN (dense 512-256-128-10, layer norm before each activation) on CIFAR-10.

Data: CIFAR-10 from the Keras cache (~/.keras/datasets/cifar-10-python.tar.gz or the
extracted cifar-10-batches-py/; never downloaded), augmented by random shifts up to 6 px and
horizontal flips. Training as the ERA supplement: SGD momentum 0.9, batch 64, 100 epochs,
lr 0.01 x0.1 at epochs 25, 50, 75, L2 1e-3 on conv/dense kernels only (not ERA, not norms).

  python -m pose_era.train --config cifar10_fcn --workdir runs/cifar10_fcn
  python -m pose_era.train --config cifar10_fcn:quick     # 1 epoch, a smoke test

Not run here (no CIFAR-10 in this machine's cache, no internet). Speed on a shared 2-core
Xeon CPU: 113 train steps/s with ReLU, 76 with ERA, so 100 epochs take about 0.2-0.3 h.
"""
from configs.common_classification import classification_config


def get_config(arg=None):
    return classification_config(
        arg, dataset="cifar10", model="fcn", image_size=32, epochs=100, batch_size=64, lr=0.01,
        boundaries=(25, 50, 75), augment=True)
