"""`python -m pose_era.train`: the training command of the design's contract.

An entry point only (the top layer, like tools/): the driver lives in training/driver.py, which
is part of the repository, not of the installed `pose_era` package (docs/layers.md).
"""
import sys

if __name__ == "__main__":
    try:
        from training.driver import main
    except ModuleNotFoundError as err:
        sys.exit(f"error: {err}; python -m pose_era.train runs from the repository root "
                 "(the installed pose_era package holds the ERA/body-model core only)")
    sys.exit(main())
