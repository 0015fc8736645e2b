"""The one training driver: `python -m pose_era.train --config NAME [--workdir DIR] [--set k=v ...]`.

Every task (classification, MarkerPoser pre-training, pose) runs through this loop: a
tf.distribute strategy (the default one on a CPU, MirroredStrategy on several GPUs,
MultiWorkerMirroredStrategy when TF_CONFIG names a cluster), a custom train step, checkpoints
through tf.train.CheckpointManager (a run killed with kill -9 resumes at its last checkpoint),
TensorBoard scalars, a tqdm bar with ETA and loss, and a NaN guard that stops before a
non-finite update can reach a checkpoint. The task-specific parts come from the task module
named by `config.task` (interface: docs/contracts.md).

Examples:
  python -m pose_era.train --config digits_cnn
  python -m pose_era.train --config mixer_64 --workdir runs/m64 --set train.steps=200 train.batch_size=4
  python -m pose_era.train --config mixer_64 --dry_run
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pose_era import checkpoints  # noqa: E402
from pose_era import config as config_lib  # noqa: E402
from pose_era import tasks  # noqa: E402


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/Inf; the last good checkpoint is kept."""


def make_strategy(train_config):
    """The distribution strategy: explicit devices, a TF_CONFIG cluster, several GPUs, or none."""
    devices = list(train_config.get("devices") or [])
    if devices:
        # CPU replicas reduce on one device: collective all-reduce instances of two strategies
        # in one process can collide (TF matches them by instance key, not by strategy).
        on_cpu = all("CPU" in d.upper() for d in devices)
        return tf.distribute.MirroredStrategy(
            devices, cross_device_ops=tf.distribute.ReductionToOneDevice() if on_cpu else None)
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def total_steps(config, task):
    """train.steps, or train.epochs converted with the task's training-set size."""
    steps = config.train.get("steps") or 0
    epochs = config.train.get("epochs") or 0
    if steps:
        return int(steps), None
    if not epochs:
        raise config_lib.ConfigError("set train.steps or train.epochs to a positive number")
    size = task.train_size(config)
    steps_per_epoch = math.ceil(size / config.train.batch_size)
    return int(epochs * steps_per_epoch), steps_per_epoch


def learning_rate(opt, steps_per_epoch, steps):
    """Constant, piecewise (x factor at boundaries), exponential (staircase) or cosine schedule.

    cosine: linear warm-up from 0 over optimizer.warmup_steps, then a cosine from lr down to
    lr * optimizer.final_lr_fraction at the run's last step. Why warm-up: Adam's first steps on a
    network trained from scratch are the largest and least informed.
    """
    unit = steps_per_epoch or 1  # boundaries are in epochs when the run is counted in epochs
    kind = opt.get("schedule", "constant")
    warmup = int(opt.get("warmup_steps", 0) or 0)
    if warmup and kind != "cosine":
        raise config_lib.ConfigError(
            f"optimizer.warmup_steps={warmup} needs optimizer.schedule=cosine (it is {kind})")
    if kind == "cosine":
        if not 0 <= warmup < steps:
            raise config_lib.ConfigError(
                f"optimizer.warmup_steps={warmup} must be below the run's {steps} steps; "
                "lower it with --set optimizer.warmup_steps=N")
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else opt.lr, decay_steps=steps - warmup,
            alpha=float(opt.final_lr_fraction), warmup_target=opt.lr if warmup else None,
            warmup_steps=warmup)
    if kind == "constant":
        return opt.lr
    if kind == "piecewise":
        bounds = [int(b * unit) for b in opt.boundaries]
        values = [opt.lr * opt.factor ** i for i in range(len(bounds) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)
    if kind == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            opt.lr, decay_steps=opt.decay_steps, decay_rate=opt.decay_rate, staircase=True)
    raise config_lib.ConfigError(
        f"unknown optimizer.schedule '{kind}'; choose constant, piecewise, exponential or cosine")


def make_optimizer(opt, steps_per_epoch, steps, mixed_precision):
    lr = learning_rate(opt, steps_per_epoch, steps)
    if opt.name == "sgd":
        optimizer = keras.optimizers.SGD(lr, momentum=opt.get("momentum", 0.0))
    elif opt.name == "adam":
        optimizer = keras.optimizers.Adam(lr)
    else:
        raise config_lib.ConfigError(f"unknown optimizer.name '{opt.name}'; choose sgd or adam")
    if mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def resolve_jit(value):
    """train.jit_compile: true/false, or "auto" = on where a GPU is visible."""
    if isinstance(value, str):
        return value == "auto" and bool(tf.config.list_physical_devices("GPU"))
    return bool(value)


def _write_json_atomic(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def code_version():
    """{commit, dirty} of the git checkout this code runs from (None outside one), so that
    a result can be traced to the code that produced it."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


def record_start(workdir, step):
    """Appends this (re)start to WORKDIR/run_info.json: time, step, command, code version."""
    path = Path(workdir) / "run_info.json"
    starts = json.loads(path.read_text())["starts"] if path.is_file() else []
    starts.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "step": int(step),
                   "argv": sys.argv, "tensorflow": tf.__version__,
                   "keras": keras.__version__, **code_version()})
    _write_json_atomic(path, {"starts": starts})


class Trainer:
    """Owns the model, optimizer, checkpoint and the compiled step of one training run."""

    def __init__(self, config, workdir):
        self.config = config
        self.workdir = Path(workdir)
        self.task = tasks.get(config.task)
        tc = config.train
        keras.utils.set_random_seed(int(tc.seed))
        policy = tc.get("mixed_precision") or "float32"
        keras.mixed_precision.set_global_policy(policy)
        self.strategy = make_strategy(tc)
        self.steps, self.steps_per_epoch = total_steps(config, self.task)
        with self.strategy.scope():
            self.model = self.task.build_model(config)
            self.optimizer = make_optimizer(config.optimizer, self.steps_per_epoch, self.steps,
                                            policy)
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.checkpoint = tf.train.Checkpoint(
                model=self.model, optimizer=self.optimizer, step=self.step)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.workdir / "ckpt"), max_to_keep=3)
        self.regularized = self.task.regularized_weights(self.model)
        self._train_step = self._make_train_step(resolve_jit(tc.get("jit_compile", "auto")))

    def restore_latest(self):
        """Loads the last checkpoint; the config's constant learning rate wins over the saved one.

        A fresh run with `train.init_from` (a workdir or prefix) starts from that run's model
        weights (fine-tuning, e.g. full supervision after weak pre-training) at step 0.
        """
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint)
            if self.config.optimizer.get("schedule", "constant") == "constant":
                self.optimizer.learning_rate = self.config.optimizer.lr
        elif self.config.train.get("init_from"):
            _, prefix = checkpoints.find(self.config.train.init_from)
            tf.train.Checkpoint(model=self.model).restore(prefix).expect_partial()
            print(f"initialised the model from {prefix}")
        return int(self.step.numpy())

    def _make_train_step(self, jit_compile):
        opt_config = self.config.optimizer
        l2 = float(opt_config.get("l2", 0.0))
        clip = float(opt_config.get("clip_norm", 0.0) or 0.0)
        variables = self.model.trainable_variables
        scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)

        def replica_step(inputs, targets):
            with tf.GradientTape() as tape:
                per_example, metrics = self.task.compute_loss(
                    self.model, inputs, targets, training=True)
                loss = tf.nn.compute_average_loss(tf.cast(per_example, tf.float32))
                if l2 and self.regularized:
                    penalty = tf.add_n([tf.reduce_sum(tf.square(tf.cast(w, tf.float32)))
                                        for w in self.regularized])
                    loss += l2 * penalty / self.strategy.num_replicas_in_sync
                objective = self.optimizer.scale_loss(loss) if scaled else loss
            grads = tape.gradient(objective, variables)
            if clip:
                grads, _ = tf.clip_by_global_norm(grads, clip)
            self.optimizer.apply_gradients(zip(grads, variables))
            return loss, metrics

        replica_fn = tf.function(replica_step, jit_compile=jit_compile)

        @tf.function
        def train_step(iterator):
            inputs, targets = next(iterator)
            loss, metrics = self.strategy.run(replica_fn, args=(inputs, targets))
            reduce = lambda v: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            loss = reduce(loss)
            metrics = {k: reduce(v) / self.strategy.num_replicas_in_sync
                       for k, v in metrics.items()}
            self.step.assign_add(1)
            return loss, metrics

        return train_step

    def _weights_finite(self):
        return all(np.all(np.isfinite(v.numpy())) for v in self.model.weights)

    def save(self):
        if not self._weights_finite():
            raise NonFiniteLossError("weights became non-finite; not saving over the last good "
                                     f"checkpoint {self.manager.latest_checkpoint}")
        self.manager.save(checkpoint_number=int(self.step.numpy()))

    def evaluate(self, writer):
        results = self.task.evaluate(self.model, self.task.eval_dataset(self.config))
        step = int(self.step.numpy())
        with writer.as_default(step=step):
            for key, value in results.items():
                tf.summary.scalar(f"eval/{key}", value)
        _write_json_atomic(self.workdir / "eval" / "train_eval.json",
                           {"step": step, **{k: float(v) for k, v in results.items()}})
        return results

    def fit(self):
        """Runs to train.steps (or epochs), resuming from the last checkpoint in the workdir."""
        tc = self.config.train
        config_lib.save_json(self.config, self.workdir)
        start = self.restore_latest()
        if start >= self.steps:
            print(f"already trained to step {start} of {self.steps} in {self.workdir}")
            return {}
        record_start(self.workdir, start)
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: self.task.train_dataset(self.config, ctx))
        iterator = iter(dataset)
        writer = tf.summary.create_file_writer(str(self.workdir / "tb"))
        log_every = int(tc.get("log_every", 50))
        ckpt_every = int(tc.get("ckpt_every", 1000))
        eval_every = int(tc.get("eval_every", 0) or 0)
        summarize = getattr(self.task, "summarize", None)
        bar = tqdm(total=self.steps, initial=start, desc=self.config.get("config_name", "train"),
                   dynamic_ncols=True, mininterval=1.0, file=sys.stdout)
        results = {}
        started = time.time()
        while int(self.step.numpy()) < self.steps:
            loss, metrics = self._train_step(iterator)
            loss = float(loss)
            step = int(self.step.numpy())
            if not math.isfinite(loss):
                bar.close()
                raise NonFiniteLossError(
                    f"loss became {loss} at step {step}; stopped. The last good checkpoint is "
                    f"{self.manager.latest_checkpoint}. Lower optimizer.lr or set "
                    "optimizer.clip_norm.")
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if step % log_every == 0 or step == self.steps:
                with writer.as_default(step=step):
                    tf.summary.scalar("train/loss", loss)
                    for key, value in metrics.items():
                        tf.summary.scalar(f"train/{key}", value)
                    lr = self.optimizer.learning_rate
                    tf.summary.scalar("train/lr", lr() if callable(lr) else lr)
                    tf.summary.scalar("train/steps_per_s", (step - start) / (time.time() - started))
                if summarize is not None:
                    summarize(self.model, self.config, step, writer)
            if step % ckpt_every == 0 or step == self.steps:
                self.save()
            if (eval_every and step % eval_every == 0) or step == self.steps:
                results = self.evaluate(writer)
                bar.write(f"step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in results.items()))
        bar.close()
        writer.flush()
        return results


def dry_run(config):
    """Builds the model and prints its parameter counts on one line."""
    task = tasks.get(config.task)
    model = task.build_model(config)
    counts = task.count_params(model) if hasattr(task, "count_params") else {
        "total": model.count_params()}
    print("params: " + " ".join(f"{k}={v}" for k, v in counts.items()))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m pose_era.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="NAME or NAME:ARG from configs/")
    parser.add_argument("--workdir", help="checkpoints, TensorBoard, config.json "
                                          "(default: runs/<config name>)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. --set train.steps=100 model.activation=era")
    parser.add_argument("--dry_run", action="store_true",
                        help="build the model, print its parameter counts and exit")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        config = config_lib.apply_overrides(config_lib.load_config(args.config), args.set)
        if args.dry_run:
            dry_run(config)
            return 0
        workdir = args.workdir or os.path.join("runs", args.config.replace(":", "_"))
        Trainer(config, workdir).fit()
    except (config_lib.ConfigError, checkpoints.CheckpointError, FileNotFoundError,
            NonFiniteLossError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
