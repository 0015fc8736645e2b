"""Body models: the file format, the TensorFlow skinning model, builders and the default cache.

    from pose_era.body import BodyModel, default_body_model_path
    body = BodyModel.load(default_body_model_path())
    out = body(betas, rotmats, transl)  # vertices, joints, markers, h36m17, coco17
"""
from pose_era.body.cache import default_body_model_path
from pose_era.body.model import BodyModel

__all__ = ["BodyModel", "default_body_model_path"]
