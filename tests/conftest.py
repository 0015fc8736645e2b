"""Test-wide TensorFlow set-up: quiet logs and two logical CPU devices.

Two logical CPUs let the tf.distribute tests run MirroredStrategy on a 1-CPU machine; they
must be configured before TensorFlow initialises its devices, hence here, at import time.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
