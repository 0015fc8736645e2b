"""MobileNetV2 + shared-weight Mixer (width 256, ERA degree 2, swish init) on the synthetic set.

The ERA supplement's Mixer configuration (Table 8: 5.1M parameters) in THUNDR's pipeline:
markers regressed from 480x480 crops, refined 4 times by one shared block, MarkerPoser -> mesh.

  python -m pose_era.train --config mixer_256 --workdir runs/mixer_256
  python -m pose_era.train --config mixer_256 --dry_run          # parameter counts, then exit
  python -m pose_era.train --config mixer_256:cpu                # CPU-sized (what make demo runs)

Expected result: see BUILD_NOTES.md ("Pose results") for the measured MPJPE / PA-MPJPE of the
CPU runs on the synthetic test split (python -m eval.h36m --ckpt runs/mixer_256); full-size training
needs a GPU (hours there, days on a CPU).
"""
from configs.common_pose import pose_config


def get_config(arg=None):
    return pose_config(arg, name="mixer_256", backbone="mobilenet_v2", head_kind="mixer", width=256)
