"""The synthetic human dataset: sampler (bodies, poses, cameras, looks), a headless renderer,
scenes (one example from its seed), the TFRecord format and the dataset writer."""
from data_pipelines.synthetic.writer import ensure_synthetic_dataset, write_dataset

__all__ = ["ensure_synthetic_dataset", "write_dataset"]
