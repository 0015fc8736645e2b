"""Config of the toy regression task used by tests/test_train.py."""
import ml_collections

from configs.common import optimizer_section, train_section


def get_config(arg=None):
    config = ml_collections.ConfigDict()
    config.task = "tests.toy_task.ToyTask"
    config.train = train_section(steps=60, batch_size=32, log_every=10, ckpt_every=20,
                                 jit_compile=False)
    config.optimizer = optimizer_section(name="sgd", lr=0.05, momentum=0.9)
    return config
