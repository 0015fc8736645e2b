"""ERA (Enhanced Rational Activations): the Keras layer, its initial fits, the fused CPU kernel
dispatch, and the normalisation the paper places before each activation."""
from pose_era.era.activations import ACTIVATIONS, build_activation
from pose_era.era.layer import ERA
from pose_era.era.norm import AffineNorm, build_norm
from pose_era.era.ops import EPS, era_activation, era_formula, force_plain, use_fused

__all__ = ["ACTIVATIONS", "AffineNorm", "EPS", "ERA", "build_activation", "build_norm",
           "era_activation", "era_formula", "force_plain", "use_fused"]
