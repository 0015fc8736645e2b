"""Pre-activation ResNet-18 (instance norm before every activation) on ImageNet (ILSVRC-2012).

Data: a user's ImageNet, `--set data.dir=DIR` with train/<class>/*.JPEG and val/<class>/*.JPEG
folders, or TFRecord shards train-*-of-* / validation-*-of-* (1-based labels, data.label_offset).
Random-resized crops with flips for training, 224 centre crops of the 256-resized image for
evaluation. The ERA paper publishes no ResNet-18 recipe, so this is the standard one (He et al.):
SGD momentum 0.9, batch 256, lr 0.1 x0.1 at epochs 30, 60, 80, 90 epochs, L2 1e-4 on conv/dense
kernels only (not ERA, not norms). `--set model.width=32` gives a quarter-cost variant.

  python -m pose_era.train --config imagenet_resnet18 --set data.dir=/data/imagenet
  python -m pose_era.train --config imagenet_resnet18:quick --set data.dir=...   # 1 epoch

Not run here (no ImageNet, no GPU on this machine); the result of this instance-norm,
pre-activation ResNet-18 with ERA is unmeasured. Plan on multi-GPU days, not CPU.
"""
from configs.common_classification import classification_config


def get_config(arg=None):
    config = classification_config(
        arg, dataset="imagenet", model="resnet18", image_size=224, epochs=90, batch_size=256,
        lr=0.1, boundaries=(30, 60, 80), l2=1e-4, eval_batch_size=250, ckpt_every=5000)
    config.model.stem = "imagenet"
    config.data.shuffle_buffer = 10_000
    config.data.train_size = 1_281_167  # ILSVRC-2012 train images (used for TFRecord input)
    return config
