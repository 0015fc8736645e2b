"""`python -m pose_era.train`: the training command of the design's contract.

An entry point only (the top layer, like tools/): the driver lives in training/driver.py.
"""
import sys

from training.driver import main

if __name__ == "__main__":
    sys.exit(main())
