"""CNN (2 conv 3x3x64 + instance norm, 2x2 max pool, dense 128 + layer norm, dense 10) on CIFAR-10.

Data: CIFAR-10 from the Keras cache (~/.keras/datasets/cifar-10-python.tar.gz or the
extracted cifar-10-batches-py/; never downloaded), augmented by random shifts up to 6 px and
horizontal flips. Training as the ERA supplement: SGD momentum 0.9, batch 64, 100 epochs,
lr 0.01 x0.1 at epochs 25, 50, 75, L2 1e-3 on conv/dense kernels only (not ERA, not norms).

  python -m pose_era.train --config cifar10_cnn --workdir runs/cifar10_cnn
  python -m pose_era.train --config cifar10_cnn:quick     # 1 epoch, a smoke test

Not run here (no CIFAR-10 in this machine's cache, no internet). Speed on a shared 2-core
Xeon CPU: about 2.5 train steps/s (ReLU or ERA), so 100 epochs take about 8-9 h; use a GPU.
"""
from configs.common_classification import classification_config


def get_config(arg=None):
    return classification_config(
        arg, dataset="cifar10", model="cnn", image_size=32, epochs=100, batch_size=64, lr=0.01,
        boundaries=(25, 50, 75), augment=True)
