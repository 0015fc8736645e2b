"""MobileNetV2 + shared-weight Transformer (width 64, ERA degree 2, swish init) on the synthetic set.

The ERA supplement's Transformer configuration (Table 8: 3.5M parameters) in THUNDR's pipeline:
markers regressed from 480x480 crops, refined 4 times by one shared block, MarkerPoser -> mesh.

  python -m pose_era.train --config transformer_64 --workdir runs/transformer_64
  python -m pose_era.train --config transformer_64 --dry_run          # parameter counts, then exit
  python -m pose_era.train --config transformer_64:cpu                # CPU-sized (what make demo runs)

Expected result: see BUILD_NOTES.md ("Pose results") for the measured MPJPE / PA-MPJPE of the
CPU runs on the synthetic test split (python -m eval.h36m --ckpt runs/transformer_64); full-size training
needs a GPU (hours there, days on a CPU).
"""
from configs.common_pose import pose_config


def get_config(arg=None):
    return pose_config(arg, name="transformer_64", backbone="mobilenet_v2", head_kind="transformer", width=64)
