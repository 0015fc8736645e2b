"""Training: the driver (training.driver), task objects (training.tasks), checkpoints, the
learning ladder. Imports core, data, models and eval; nothing below imports it (docs/layers.md)."""
