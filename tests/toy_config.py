"""Config of the toy regression task used by tests/test_train.py."""
import ml_collections


def get_config(arg=None):
    config = ml_collections.ConfigDict()
    config.task = "tests.toy_task"
    config.train = dict(steps=60, batch_size=32, seed=0, log_every=10, ckpt_every=20,
                        eval_every=0, jit_compile=False, mixed_precision="float32", devices=[],
                        init_from="")
    config.optimizer = dict(name="sgd", lr=0.05, momentum=0.9, schedule="constant", l2=0.0,
                            clip_norm=0.0)
    return config
