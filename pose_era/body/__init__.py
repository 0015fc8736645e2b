"""Body models: the file format, the TensorFlow skinning model, builders and the default cache.

    from pose_era.body import BodyModel, default_body_model_path
    body = BodyModel.load(default_body_model_path())
    out = body(betas, rotmats, transl)  # vertices, joints, markers, h36m17, coco17

`BodyModel` is imported lazily, so the file tools (format, smpl, anny) work without loading
TensorFlow.
"""
from pose_era.body.cache import default_body_model_path

__all__ = ["BodyModel", "body_model_of", "default_body_model_path"]


def body_model_of(config):
    """The body model a pose config names: config.body.path, or ("") the cached Anny model with
    config.model.num_markers markers (built on first use). The pose task, the evaluation CLI and
    the demo all load it here."""
    from pose_era.body.model import BodyModel
    return BodyModel.load(config.body.path or
                          default_body_model_path(num_markers=int(config.model.num_markers)))


def __getattr__(name):
    if name == "BodyModel":
        from pose_era.body.model import BodyModel
        return BodyModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
