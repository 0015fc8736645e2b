"""The BlazePose model files: fetched once from the mediapipe 0.10.21 wheel, never at run time.

The two .tflite files (Apache-2.0) ship inside the `mediapipe==0.10.21` CPython 3.11 wheel;
later wheels ship no models, and that wheel cannot be installed beside TensorFlow 2.21 (it needs
protobuf < 5 and numpy < 2). So `fetch()` (run by `make demo` / `make test` through
tools/fetch_blazepose.py) downloads the pinned wheel file with `pip download --no-deps`, checks
its SHA-256, and extracts the two files atomically into `<cache>/blazepose/`. It is idempotent:
files already present with their pinned SHA-256 cost nothing. Nothing else downloads anything.
"""
from eval.pinned_wheel import extract
from pose_era.body.cache import cache_dir as _body_cache_dir

SETUP_COMMAND = "make blazepose"
WHEEL = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
REQUIREMENT = "mediapipe==0.10.21"
# The wheel for Linux x86-64 and CPython 3.11 whatever machine runs the download.
PIP_ARGS = ("--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version",
            "3.11", "--implementation", "cp")
# file name -> (path inside the wheel, SHA-256 of the file)
MODELS = {
    "pose_detection.tflite": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
}


class ModelsMissing(FileNotFoundError):
    """A BlazePose model file is not in the cache; the message names the setup command."""


def model_dir():
    """`$POSE_ERA_CACHE/blazepose/` (default `<repo>/cache/blazepose/`)."""
    return _body_cache_dir().parent / "blazepose"


def model_path(name):
    """Path of a model file of MODELS; ModelsMissing (one line) when it was never fetched."""
    path = model_dir() / name
    if not path.is_file():
        raise ModelsMissing(f"BlazePose model {path} not found: run `{SETUP_COMMAND}` once "
                            "(it extracts the models from the pinned mediapipe wheel)")
    return path


def fetch(log=print):
    """Makes sure both model files are in model_dir(); returns that folder.

    RuntimeError (one line) when pip fails or the wheel's hash differs from the pin."""
    try:
        out = extract(REQUIREMENT, WHEEL, WHEEL_SHA256, MODELS, model_dir(), PIP_ARGS,
                      log=lambda line: log(f"blazepose: {line}"))
    except RuntimeError as err:
        raise RuntimeError(f"blazepose: {err}") from None
    log(f"blazepose: models in {out}")
    return out
