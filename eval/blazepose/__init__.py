"""BlazePose person detection and 33 body landmarks, run with TensorFlow's TFLite interpreter.

    from eval.blazepose import BlazePose
    people = BlazePose()(rgb_uint8)      # [Person], most confident first

Google's MediaPipe models (assets.py fetches them, never at run time); the decoding follows
MediaPipe's graphs (detector.py, landmarks.py); keypoints.py maps the 33 landmarks to COCO-17 and
H36M-17. Depends on NumPy, OpenCV and TensorFlow only.
"""
from eval.blazepose.runner import BlazePose, Person

__all__ = ["BlazePose", "Person"]
