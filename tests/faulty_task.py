"""The toy regression task with a file-based validation split (a SPIN-layout npz named by
config.eval_npz), so the driver's check of every split's files before the first step can be
tested in seconds: the npz is read by the same reader as the pose task's validation split."""
from data_pipelines import h36m
from tests.toy_task import ToyTask


class FaultyTask(ToyTask):
    def eval_dataset(self):
        h36m.load_npz(self.config.eval_npz)  # what pipeline.build_dataset(config, "val") reads first
        return super().eval_dataset()
