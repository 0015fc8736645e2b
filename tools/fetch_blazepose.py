"""Puts the BlazePose model files into the cache (idempotent; run by `make demo` / `make test`).

Usage:
    python tools/fetch_blazepose.py

Downloads the pinned mediapipe 0.10.21 wheel with pip (no install), checks its SHA-256 and
extracts pose_detection.tflite and pose_landmark_full.tflite (eval/blazepose/assets.py).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.blazepose import assets  # noqa: E402


def main():
    try:
        assets.fetch()
    except (RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
