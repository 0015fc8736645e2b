"""Finding and restoring training checkpoints, so every tool accepts a workdir or a prefix.

A workdir holds `config.json` and `ckpt/` (tf.train.CheckpointManager). `restore` rebuilds the
model from the saved config through the task's `build_model`, then loads the weights, and
fails with one clear line when the path holds no checkpoint, the checkpoint is damaged, or the
model does not match it: a saved model variable that the rebuilt model leaves unused (e.g. ERA
parameters when config.json now says relu) is a mismatch, not a silent drop.

The `ckpt/checkpoint` index is a convenience: when it is missing, unreadable or names a file
that is gone, the newest complete ckpt-N files present are used (and the driver rewrites the
index from them), so a lost index never restarts a run at step 0 over its own checkpoints.
"""
import contextlib
import logging
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import trackable_object_graph_pb2
from tensorflow.python.checkpoint import checkpoint_management
from tensorflow.python.checkpoint.checkpoint_management import CheckpointState

from training import config as config_lib
from training import tasks

INDEX = "checkpoint"
_PREFIX_RE = re.compile(r"^ckpt-(\d+)\.index$")


class CheckpointError(ValueError):
    """The path is not a usable checkpoint; the message says why and what to do."""


def quiet_restore_logs():
    """TensorFlow logs one warning per unmatched value when a restore fails (hundreds of lines
    after the real error); CLIs call this so that their one-line error stays the last line."""
    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def complete_checkpoints(ckpt_dir):
    """{step: prefix} of the ckpt-N files in ckpt_dir that have an index and their data."""
    found = {}
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        match = _PREFIX_RE.match(entry.name)
        if match and list(folder.glob(f"ckpt-{match.group(1)}.data-*")):
            found[int(match.group(1))] = str(folder / f"ckpt-{match.group(1)}")
    return dict(sorted(found.items()))


def _indexed(ckpt_dir):
    """The prefix the index names, or (None, why not)."""
    path = Path(ckpt_dir) / INDEX
    if not path.is_file():
        return None, "is missing"
    state = CheckpointState()
    try:
        text_format.Merge(path.read_text(), state)
    except (text_format.ParseError, UnicodeDecodeError):
        return None, "is unreadable"
    if not state.model_checkpoint_path:
        return None, "names no checkpoint"
    prefix = Path(state.model_checkpoint_path)
    prefix = prefix if prefix.is_absolute() else Path(ckpt_dir) / prefix
    if not Path(str(prefix) + ".index").is_file():
        return None, f"names {prefix.name}, which is not there"
    return str(prefix), None


def latest(ckpt_dir):
    """(prefix or None, note or None): the index's checkpoint, else the newest complete one.

    The note says why the index was not used (None when it was, or when there is nothing).
    CheckpointError when ckpt-N files exist but none of them is complete."""
    prefix, why = _indexed(ckpt_dir)
    if prefix is not None:
        return prefix, None
    present = complete_checkpoints(ckpt_dir)
    if present:
        step, prefix = max(present.items())
        return prefix, (f"{Path(ckpt_dir) / INDEX} {why}; using ckpt-{step}, the newest "
                        f"complete checkpoint present (of {', '.join(map(str, present))})")
    partial = sorted(p.name for p in Path(ckpt_dir).glob("ckpt-*")) if Path(
        ckpt_dir).is_dir() else []
    if partial:
        raise CheckpointError(f"{ckpt_dir} holds only incomplete checkpoint files "
                              f"({', '.join(partial[:4])}); move them away to start afresh")
    return None, None


def write_index(ckpt_dir, prefix, all_prefixes):
    """Rewrites ckpt/checkpoint to name `prefix`, with CheckpointManager's own (atomic) writer
    and relative paths, as the manager writes them, so a moved workdir still resumes."""
    checkpoint_management.update_checkpoint_state_internal(
        str(ckpt_dir), str(prefix), all_model_checkpoint_paths=[str(p) for p in all_prefixes],
        save_relative_paths=True)


def repair_index(ckpt_dir):
    """Rebuilds a missing or broken index from the ckpt-N files present; returns the note
    (None when nothing needed repair). Call with the workdir locked."""
    prefix, note = latest(ckpt_dir)
    if note is not None:
        write_index(ckpt_dir, prefix, complete_checkpoints(ckpt_dir).values())
    return note


def rewind(ckpt_dir, step):
    """Makes ckpt-`step` the latest: later checkpoints move to ckpt/set_aside-<time>/ (kept,
    never deleted). Returns the folder they went to, or None. Call with the workdir locked."""
    present = complete_checkpoints(ckpt_dir)
    if step not in present:
        raise CheckpointError(f"--from_step {step}: no complete ckpt-{step} in {ckpt_dir}; "
                              f"present: {', '.join(map(str, present)) or 'none'}")
    later = [s for s in present if s > step]
    aside = None
    if later:
        aside = Path(ckpt_dir) / time.strftime("set_aside-%Y%m%d-%H%M%S")
        aside.mkdir()
        for s in later:
            for f in Path(ckpt_dir).glob(f"ckpt-{s}.*"):
                shutil.move(str(f), aside / f.name)
    write_index(ckpt_dir, present[step], [p for s, p in present.items() if s <= step])
    return aside


def find(path):
    """Returns (workdir, checkpoint prefix) for a workdir or a checkpoint prefix."""
    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        prefix, note = latest(path / "ckpt")
        if prefix is None:
            raise CheckpointError(f"{path} has no checkpoint in ckpt/: train first "
                                  f"(python -m pose_era.train --config NAME --workdir {path})")
        if note:
            print(f"note: {note}", file=sys.stderr)
        return path, prefix
    if Path(str(path) + ".index").is_file():
        for parent in path.parents:
            if (parent / "config.json").is_file():
                return parent, str(path)
        raise CheckpointError(f"no config.json above checkpoint {path}: pass its workdir")
    raise CheckpointError(f"{path} is neither a training workdir (with config.json and ckpt/) "
                          "nor a checkpoint prefix (like WORKDIR/ckpt/ckpt-3)")


def _damaged(prefix, err):
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return CheckpointError(f"checkpoint {prefix} is damaged or incomplete ({first[:200]}); "
                           "resume from an earlier one with --from_step N (see its ckpt/)")


def step_of(prefix):
    """The training step stored in a checkpoint."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        return int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    except (tf.errors.OpError, ValueError, IndexError) as err:
        raise _damaged(prefix, err) from None


def _unused_model_values(status, prefix, child="model"):
    """Checkpoint keys of saved variables under the root's `child` (None: under any child)
    that the restore matched to nothing: assert_existing_objects_matched accepts a model that
    simply has fewer variables."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(prefix).get_tensor(
        "_CHECKPOINTABLE_OBJECT_GRAPH"))
    stack = [c.node_id for c in graph.nodes[0].children if child is None
             or c.local_name == child]
    seen = set()
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack += [c.node_id for c in graph.nodes[node].children]
    matched = status._checkpoint.object_by_proto_id  # noqa: SLF001 (the restore's own record)
    return sorted(graph.nodes[n].attributes[0].checkpoint_key for n in seen
                  if graph.nodes[n].attributes and n not in matched)


def _write_bundle(prefix, tensors):
    """Writes {checkpoint key: tensor} as a TensorFlow V2 checkpoint bundle at `prefix`."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tensors[n] for n in names])


def _read_bundle(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {key: np.asarray(reader.get_tensor(key)) for key in reader.get_variable_to_dtype_map()}


def variable_keys(model, prefix):
    """{checkpoint key: variable} for the variables of `model` in `prefix`, a checkpoint of
    tf.train.Checkpoint(model=model) (restoring it maps the saved object graph onto them)."""
    with float32_view(prefix) as readable:
        status = tf.train.Checkpoint(model=model).restore(readable)
        status.expect_partial()
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(str(prefix)).get_tensor(
        "_CHECKPOINTABLE_OBJECT_GRAPH"))
    by_object = {id(obj): graph.nodes[node].attributes[0].checkpoint_key
                 for node, obj in status._checkpoint.object_by_proto_id.items()  # noqa: SLF001
                 if graph.nodes[node].attributes}
    # The graph holds the Keras variable or the tf.Variable inside it, depending on which path
    # reached it first.
    found = [(by_object.get(id(v), by_object.get(id(v.value))), v) for v in model.weights]
    return {key: v for key, v in found if key is not None}


def save_float16(prefix, out_prefix, keys):
    """Copies checkpoint `prefix` to `out_prefix` with the float32 tensors of `keys` stored as
    float16 (same keys and object graph), which halves their size. `restore_into` widens them
    back to float32. Returns the numbers of tensors narrowed and kept."""
    tensors, narrowed = _read_bundle(prefix), 0
    for key in keys:
        if tensors[key].dtype == "float32":
            tensors[key] = tensors[key].astype("float16")
            narrowed += 1
    _write_bundle(out_prefix, tensors)
    return narrowed, len(tensors) - narrowed


def stores_float16(prefix):
    """Whether checkpoint `prefix` holds float16 values (written by save_float16)."""
    dtypes = tf.train.load_checkpoint(str(prefix)).get_variable_to_dtype_map().values()
    return tf.float16 in dtypes


@contextlib.contextmanager
def float32_view(prefix):
    """Yields a prefix whose values are all float32: `prefix` itself, or, when it stores float16
    values, a temporary widened copy (TensorFlow's restore does not cast between dtypes)."""
    if not stores_float16(prefix):
        yield prefix
        return
    with tempfile.TemporaryDirectory(prefix="float32_ckpt_") as folder:
        tensors = {key: value.astype("float32") if value.dtype == "float16" else value
                   for key, value in _read_bundle(prefix).items()}
        widened = Path(folder) / Path(prefix).name
        _write_bundle(widened, tensors)
        yield str(widened)


def restore_into(checkpoint, prefix, what):
    """Restores `prefix` into a tf.train.Checkpoint whose objects all exist; CheckpointError
    (one line) when the file is damaged or it does not match `what` (e.g. 'the model of
    W/config.json'). The checkpoint's optimizer slots and step are matched like the model;
    float16-stored values (a release, `save_float16`) are widened to the model's float32."""
    try:
        with float32_view(prefix) as readable:
            return _restore_matched(checkpoint, readable, prefix, what)
    except tf.errors.OpError as err:  # unreadable before the restore (float32_view's reads)
        raise _damaged(prefix, err) from None


def _restore_matched(checkpoint, readable, prefix, what):
    status = None
    try:
        status = checkpoint.restore(readable)
        status.assert_existing_objects_matched()
        unused = _unused_model_values(status, readable)
    except (AssertionError, ValueError) as err:
        if status is not None:
            status.expect_partial()
        raise CheckpointError(f"checkpoint {prefix} does not match {what}: "
                              f"{str(err).splitlines()[0][:300]}") from None
    except (tf.errors.OpError, IndexError) as err:
        if status is not None:
            status.expect_partial()
        if "shape" in str(err).lower() and isinstance(err, tf.errors.InvalidArgumentError):
            raise CheckpointError(f"checkpoint {prefix} does not match {what}: "
                                  f"{str(err).splitlines()[0][:300]}") from None
        raise _damaged(prefix, err) from None
    if unused:
        status.expect_partial()
        raise CheckpointError(
            f"checkpoint {prefix} does not match {what}: {len(unused)} saved model variable(s) "
            f"would be left unused (e.g. {unused[0].split('/.ATTRIBUTES')[0]}); the config does "
            "not build the model that was trained")
    return status


def _weighted_layers(model):
    """{name: layer} of the model's top-level layers that hold variables."""
    return {layer.name: layer for layer in model.layers if layer.weights}


def initialise_from(model, path):
    """Loads the model weights of the run at `path` (a workdir or a checkpoint prefix) into
    `model`, a fresh model of this or another config; returns (prefix, paths of `model`'s
    variables the run does not have, which keep their initial values).

    The run's model is rebuilt from its own config.json and restored (strictly, float16 widened:
    `restore_into`). When `model` has the same variables (kinds and shapes, in order), they are
    copied one to one. Otherwise (a fine-tune that adds layers, e.g. model.keypoint_input to the
    released network) they are copied layer by layer by the top-level layers' NAMES, each
    layer's own variables matched as tf.train matches them. Why not restore the checkpoint into
    `model` directly: a functional model's checkpoint numbers its layers (model/_operations/N),
    and one more Input shifts those numbers, so weights would go to the wrong layers or fail.
    Every variable of the run must land in a layer of the same name and shape (CheckpointError
    otherwise); `model` may have more (returned)."""
    workdir, prefix = find(path)
    config = config_lib.load_json(workdir)
    source = tasks.get(config.task)(config).build_model()
    restore_into(tf.train.Checkpoint(model=source), prefix,
                 f"the model of {workdir}/config.json").expect_partial()
    kinds = lambda m: [(type(v).__name__, tuple(v.shape)) for v in m.weights]  # noqa: E731
    if kinds(source) == kinds(model):
        for theirs, ours in zip(source.weights, model.weights):
            ours.assign(theirs)
        return prefix, []
    theirs, ours = _weighted_layers(source), _weighted_layers(model)
    missing = sorted(set(theirs) - set(ours))
    if missing:
        raise CheckpointError(f"cannot initialise from {prefix}: this model has no layer "
                              f"{', '.join(missing)} (the run's config builds them)")
    with tempfile.TemporaryDirectory(prefix="init_from_") as folder:
        written = tf.train.Checkpoint(**theirs).write(str(Path(folder) / "weights"))
        try:
            status = tf.train.Checkpoint(**{name: ours[name] for name in theirs}).read(written)
            status.expect_partial()
            unused = _unused_model_values(status, written, child=None)
        except (ValueError, tf.errors.InvalidArgumentError) as err:
            raise CheckpointError(f"cannot initialise from {prefix}: "
                                  f"{str(err).splitlines()[0][:300]}") from None
        restored = status._checkpoint.object_by_proto_id.values()  # noqa: SLF001
        matched = {id(obj) for obj in restored}
    if unused:
        raise CheckpointError(
            f"cannot initialise from {prefix}: {len(unused)} of its variables fit no variable "
            f"of this model (e.g. {unused[0].split('/.ATTRIBUTES')[0]}): a layer of the same "
            "name is built differently")
    return prefix, [v.path for v in model.weights
                    if id(v) not in matched and id(getattr(v, "value", v)) not in matched]


def open_checkpoint(path, task=None):
    """(workdir, prefix, config) of a checkpoint without building the model (cheap, so a CLI
    checks its other inputs before the slow part); CheckpointError when it is not a run of
    `task` (when given)."""
    workdir, prefix = find(path)
    config = config_lib.load_json(workdir)
    if task is not None and config.task != task:
        raise CheckpointError(f"{workdir} was trained for task '{config.task}', not '{task}'; "
                              f"pass the workdir of a {task} config (e.g. runs/demo)")
    return Path(workdir), prefix, config


def restore(path):
    """Returns (config, model, step) rebuilt from a workdir or checkpoint prefix."""
    workdir, prefix = find(path)
    config = config_lib.load_json(workdir)
    model = tasks.get(config.task)(config).build_model()
    status = restore_into(tf.train.Checkpoint(model=model), prefix,
                          f"the model of {workdir}/config.json")
    status.expect_partial()  # the optimizer and step of a training checkpoint are not wanted
    return config, model, step_of(prefix)
