"""A file-based source: per-sample label arrays + an image folder -> contract examples.

The Human3.6M (SPIN npz) and COCO readers only turn their formats into label arrays in
full-image pixels; this module does the rest the same way for both: list the records (cheap,
shardable and shuffleable before any image is read), read with bad-file skipping, decode, crop
the box resized to the output size, and map K and the 2D keypoints into the crop.

Label arrays (N leading), the first five required:
  imgname (N,) str relative to the image root; center (N,2) px; scale (N,) (box = 200*scale px);
  K (N,3,3) full-image intrinsics with K_given (N,) 1/0 (0: sqrt(W^2+H^2) focal, centred
  principal point, computed from the decoded image size); optional: kp2d (N,17,3) full-image pixels +
  visibility; j3d/has_j3d, betas/pose/transl/has_params, markers/has_markers as in the schema.
"""
import os

import numpy as np
import tensorflow as tf

from data_pipelines import images, schema
from pose_era import geometry


class FileSource:
    """Label arrays + image root; `examples(records)` turns records into schema examples."""

    def __init__(self, name, image_root, labels, image_size, sizes):
        self.name = name
        self.image_root = str(image_root)
        self.image_size = int(image_size)
        self.sizes = sizes
        keep = images.existing_files(self.image_root, labels["imgname"], name)
        self.labels = {k: np.asarray(v)[keep] for k, v in labels.items()}

    def __len__(self):
        return len(self.labels["imgname"])

    def records(self, indices=None):
        """Label records (no image read yet) for a dataset of int64 indices (default: all,
        in file order): shard and shuffle the indices, which are cheap, before this."""
        paths = np.array([os.path.join(self.image_root, str(n)) for n in self.labels["imgname"]])
        columns = {k: tf.constant(v) for k, v in dict(self.labels, path=paths).items()}
        indices = tf.data.Dataset.range(len(self)) if indices is None else indices
        return indices.map(lambda i: {k: tf.gather(v, i) for k, v in columns.items()})

    def examples(self, records, records_per_pass):
        """Records -> schema examples; unreadable images are skipped and counted."""
        return images.map_skipping_bad(records, self._example, self._placeholder,
                                       records_per_pass, self.name)

    def _placeholder(self, rec):
        return schema.complete({"imgname": rec["imgname"]}, self.sizes, self.image_size)

    def _example(self, rec):
        image = images.decode(tf.io.read_file(rec["path"]))
        size = tf.shape(image)
        height, width = size[0], size[1]
        default = geometry.intrinsics(geometry.default_focal(width, height), width, height)
        K_full = tf.where(rec["K_given"] > 0, tf.cast(rec["K"], tf.float32), default)
        box = images.square_box(rec["center"], rec["scale"])
        crop, K_crop, affine = images.crop(image, K_full, box, self.image_size)
        example = {k: v for k, v in rec.items()
                   if k not in ("path", "center", "scale", "K", "K_given")}
        example.update(image=crop, K=K_crop)
        if "kp2d" in rec:
            example["kp2d"] = images.map_keypoints(rec["kp2d"], affine)
        return schema.complete(example, self.sizes, self.image_size)

