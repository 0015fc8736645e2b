"""Body models: the file format, the TensorFlow skinning model, builders and the default cache.

    from pose_era.body import BodyModel, default_body_model_path
    body = BodyModel.load(default_body_model_path())
    out = body(betas, rotmats, transl)  # vertices, joints, markers, h36m17, coco17

`BodyModel` is imported lazily, so the file tools (format, smpl, anny) work without loading
TensorFlow.
"""
from pose_era.body.cache import default_body_model_path

__all__ = ["BodyModel", "default_body_model_path"]


def __getattr__(name):
    if name == "BodyModel":
        from pose_era.body.model import BodyModel
        return BodyModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
