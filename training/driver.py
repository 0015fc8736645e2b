"""The one training driver: `python -m pose_era.train --config NAME [--workdir DIR] [--set k=v ...]`.

Every task (classification, MarkerPoser pre-training, pose) runs through this loop: a
tf.distribute strategy (the default one on a CPU, MirroredStrategy on several GPUs,
MultiWorkerMirroredStrategy when TF_CONFIG names a cluster), a custom train step, checkpoints
through tf.train.CheckpointManager (a run killed with kill -9 resumes at its last checkpoint),
TensorBoard scalars, a tqdm bar with ETA and loss, and a divergence guard that writes a
checkpoint only from a state it trusts. One run at a time holds a workdir (a lock); a resume
with a config that changes the saved model is refused before anything is written; SIGINT /
SIGTERM save the current step. Every failure is one line and exit status 2 (docs/failures.md).
The task-specific parts come from the task object `tasks.get(config.task)(config)`
(training/tasks/base.py, docs/contracts.md). The keys read here are declared in
configs/common.py.

Examples:
  python -m pose_era.train --config digits_cnn
  python -m pose_era.train --config mixer_64 --workdir runs/m64 --set train.steps=200 train.batch_size=4
  python -m pose_era.train --config mixer_64 --dry_run
  python -m pose_era.train --config mixer_64 --workdir runs/m64 --from_step 2000   # go back
"""
import argparse
import collections
import errno
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pose_era import io  # noqa: E402
from training import checkpoints  # noqa: E402
from training import config as config_lib  # noqa: E402
from training import tasks  # noqa: E402
from training.config import ConfigError  # noqa: E402


class NonFiniteLossError(RuntimeError):
    """Training diverged (NaN/Inf loss, a loss spike, exploding weights); the message names the
    last checkpoint that trains on, and no diverged state was written as a checkpoint."""


class DataError(RuntimeError):
    """The training data could not be read during training; the message names what failed."""


class Interrupted(Exception):
    """SIGINT / SIGTERM: the run stopped (after saving when it was training); exit 128+signal."""

    def __init__(self, signum, message):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


# The divergence guard (why a checkpoint is trusted). A loss above LOSS_SPIKE times the median of
# the last MEDIAN_WINDOW losses (judged after MIN_HISTORY steps), or weights whose global norm
# grew more than NORM_JUMP times since the last trusted checkpoint, mean the run blew up:
# healthy training moves the loss by far less, and the weight norm by a few percent per interval.
LOSS_SPIKE = 1e4
MEDIAN_WINDOW = 100
MIN_HISTORY = 10
NORM_JUMP = 10.0
VALID_PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Training images per second of the full-size pose configs' step at 480x480 on 2 idle CPU cores,
# by backbone (tools/bench_train.py, docs/pose_results.md: 2.7-3.1 for the MobileNet configs,
# 1.16 for ResNet50; several times less under load). The no-GPU warning's estimate scales it by
# the pixels of data.image_size: the backbone's convolutions dominate the step.
CPU_IMAGES_PER_S_480 = {"mobilenet_v2": 3.0, "resnet50": 1.16}


def make_strategy(train_config):
    """The distribution strategy: explicit devices, a TF_CONFIG cluster, several GPUs, or none."""
    devices = list(train_config.devices)
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
    steps, epochs = config.train.steps, config.train.epochs
    if steps:
        return int(steps), None
    if not epochs:
        raise ConfigError("set train.steps or train.epochs to a positive number")
    size = task.train_size()
    if not size:
        raise ConfigError(f"train.epochs={epochs}: task '{config.task}' does not know its "
                          "training-set size; set train.steps instead")
    steps_per_epoch = math.ceil(size / config.train.batch_size)
    return int(epochs * steps_per_epoch), steps_per_epoch


def learning_rate(opt, steps_per_epoch, steps):
    """Constant, piecewise (x factor at boundaries), exponential (staircase) or cosine schedule.

    cosine: linear warm-up from 0 over optimizer.warmup_steps, then a cosine from lr down to
    lr * optimizer.final_lr_fraction at the run's last step. Why warm-up: Adam's first steps on a
    network trained from scratch are the largest and least informed.
    """
    unit = steps_per_epoch or 1  # boundaries are in epochs when the run is counted in epochs
    kind = opt.schedule
    warmup = int(opt.warmup_steps)
    if warmup and kind != "cosine":
        raise ConfigError(
            f"optimizer.warmup_steps={warmup} needs optimizer.schedule=cosine (it is {kind})")
    if kind == "cosine":
        if not 0 <= warmup < steps:
            raise ConfigError(
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
    raise ConfigError(
        f"unknown optimizer.schedule '{kind}'; choose constant, piecewise, exponential or cosine")


def make_optimizer(opt, steps_per_epoch, steps, mixed_precision):
    lr = learning_rate(opt, steps_per_epoch, steps)
    if opt.name == "sgd":
        optimizer = keras.optimizers.SGD(lr, momentum=opt.momentum)
    elif opt.name == "adam":
        optimizer = keras.optimizers.Adam(lr)
    else:
        raise ConfigError(f"unknown optimizer.name '{opt.name}'; choose sgd or adam")
    if mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def resolve_jit(value):
    """train.jit_compile: true/false, or "auto" = on where a GPU is visible."""
    if isinstance(value, str):
        return value == "auto" and bool(tf.config.list_physical_devices("GPU"))
    return bool(value)


def validate(config):
    """Checks the driver's own keys before anything is built, read or written (ConfigError)."""
    tc, opt = config.train, config.optimizer

    def integer(key, value, low):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"train.{key}={value!r}: expected an integer >= {low}")
    integer("batch_size", tc.batch_size, 1)
    for key in ("steps", "epochs"):
        if isinstance(tc[key], bool) or tc[key] < 0:
            raise ConfigError(f"train.{key}={tc[key]!r}: must be >= 0")
    for key in ("log_every", "ckpt_every"):
        integer(key, tc[key], 1)
    integer("eval_every", tc.eval_every, 0)
    precision = tc.mixed_precision
    if precision not in VALID_PRECISIONS:
        raise ConfigError(f"train.mixed_precision={precision!r}: choose one of "
                          f"{', '.join(VALID_PRECISIONS)}")
    if not (isinstance(opt.lr, (int, float)) and math.isfinite(opt.lr) and opt.lr >= 0):
        raise ConfigError(f"optimizer.lr={opt.lr!r}: expected a finite number >= 0")
    if float(opt.clip_norm) < 0:
        raise ConfigError(f"optimizer.clip_norm={opt.clip_norm!r}: expected >= 0 (0 = off)")


def prepare_workdir(workdir):
    """Creates the workdir; OSError (worded by the caller) when it is a file or unwritable."""
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise OSError(errno.EEXIST, "not a folder", str(workdir))
    workdir.mkdir(parents=True, exist_ok=True)


class RunLog:
    """WORKDIR/run_info.json: one entry per start attempt (time, step it started from, command,
    code version, outcome, end_step), written when the attempt begins and updated when it ends,
    failed or not."""

    def __init__(self, workdir, step):
        self.path = Path(workdir) / "run_info.json"
        try:
            self.starts = json.loads(self.path.read_text())["starts"] if self.path.is_file() \
                else []
        except (ValueError, KeyError, TypeError):  # damaged: keep it aside, start a new list
            os.replace(self.path, self.path.with_name("run_info.damaged.json"))
            self.starts = []
        self.entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "step": step,
                      "argv": sys.argv, "tensorflow": tf.__version__,
                      "keras": keras.__version__, "outcome": "running", **io.code_version()}
        self.starts.append(self.entry)
        self._write()

    def _write(self):
        io.write_json(self.path, {"starts": self.starts})

    def update(self, outcome, **fields):
        """Sets the outcome (and e.g. step = where it started, end_step = where it stopped)."""
        self.entry["outcome"] = outcome
        self.entry.update({k: int(v) for k, v in fields.items()})
        try:
            self._write()
        except OSError:  # the outcome is printed anyway; a full disk must not hide it
            pass


def _one_line(err):
    """The error's first line; for an error raised while tracing a tf.function (its message
    starts "in user code:" and lists the trace), the last one, which names the problem."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[-1] if lines[0] == "in user code:" else lines[0]


def _prefix_step(prefix):
    return int(str(prefix).rsplit("-", 1)[1]) if prefix else 0


def build_task(config):
    """The task object of config.task; a missing file or a bad value it reads is a ConfigError
    (one line), as for the model."""
    try:
        return tasks.get(config.task)(config)
    except (ValueError, TypeError, KeyError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"the config does not build its task: {_one_line(err)}") from None


class Trainer:
    """Owns the model, optimizer, checkpoint and the compiled step of one training run."""

    def __init__(self, config, workdir):
        validate(config)
        self.config = config
        self.workdir = Path(workdir)
        self.ckpt_dir = self.workdir / "ckpt"
        self.task = build_task(config)
        tc = config.train
        keras.utils.set_random_seed(int(tc.seed))
        policy = tc.mixed_precision
        keras.mixed_precision.set_global_policy(policy)
        self.strategy = make_strategy(tc)
        self.steps, self.steps_per_epoch = total_steps(config, self.task)
        with self.strategy.scope():
            try:
                self.model = self.task.build_model()
            except (ValueError, TypeError, KeyError) as err:  # a bad model/body config value
                raise ConfigError(f"the config does not build a model: {_one_line(err)}") from None
            self.optimizer = make_optimizer(config.optimizer, self.steps_per_epoch, self.steps,
                                            policy)
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.checkpoint = tf.train.Checkpoint(
                model=self.model, optimizer=self.optimizer, step=self.step)
        self.manager = None  # opened by restore_latest, after a broken index is repaired
        self.regularized = self.task.regularized_weights(self.model)
        self._train_step = self._make_train_step(resolve_jit(tc.jit_compile))
        self._losses = collections.deque(maxlen=MEDIAN_WINDOW)
        self._first_losses = []
        self._trusted_norm = None
        self._saved_step = None
        self._stop_signal = None
        self._in_loop = False

    def _open_checkpoints(self):
        if self.manager is None:
            note = checkpoints.repair_index(self.ckpt_dir) if self.ckpt_dir.is_dir() else None
            if note:
                print(f"note: {note}; rewrote the index", file=sys.stderr)
            self.manager = tf.train.CheckpointManager(
                self.checkpoint, str(self.ckpt_dir), max_to_keep=3)
        return self.manager

    def restore_latest(self):
        """Loads the last checkpoint; the config's constant learning rate wins over the saved one.

        A fresh run with `train.init_from` (a workdir or prefix) starts from that run's model
        weights (fine-tuning, e.g. full supervision after weak pre-training) at step 0.
        """
        latest = self._open_checkpoints().latest_checkpoint
        if latest:
            checkpoints.restore_into(self.checkpoint, latest,
                                     f"the model of {self.workdir}/config.json")
            if self.config.optimizer.schedule == "constant":
                self.optimizer.learning_rate = self.config.optimizer.lr
            self._saved_step = int(self.step.numpy())
            print(f"resuming from step {self._saved_step} ({Path(latest).name})", flush=True)
        elif self.config.train.init_from:
            prefix, new = checkpoints.initialise_from(self.model, self.config.train.init_from)
            print(f"initialised the model from {prefix}")
            if new:
                print(f"  {len(new)} variables are new (not in that run; their initial values "
                      f"kept): {', '.join(new[:8])}{' ...' if len(new) > 8 else ''}")
        self._trusted_norm = self._weight_norm()
        return int(self.step.numpy())
    def _make_train_step(self, jit_compile):
        opt_config = self.config.optimizer
        l2 = float(opt_config.l2)
        clip = float(opt_config.clip_norm)
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

    def _weight_norm(self):
        """Global L2 norm of the model's weights (inf when any is non-finite)."""
        total = 0.0
        for v in self.model.weights:
            value = np.asarray(v.numpy(), np.float64)
            if not np.all(np.isfinite(value)):
                return math.inf
            total += float(np.sum(value * value))
        return math.sqrt(total)

    def _advice(self):
        """What to change, and where a rerun resumes from (never 'None')."""
        opt = self.config.optimizer
        clip = float(opt.clip_norm)
        change = (f"Lower optimizer.lr (now {opt.lr:g}); optimizer.clip_norm is already {clip:g}."
                  if clip else f"Lower optimizer.lr (now {opt.lr:g}) or set "
                  "optimizer.clip_norm (e.g. 1.0).")
        latest = self.manager.latest_checkpoint if self.manager else None
        if latest:
            where = (f"A rerun resumes from {Path(latest).name} (step {_prefix_step(latest)}), "
                     "the last checkpoint the guard trusted; --from_step N resumes from an "
                     "earlier one.")
        else:
            where = "No checkpoint was saved yet, so a rerun starts from step 0."
        return f"{change} {where}"

    def _distrust_latest(self, step):
        """The checkpoint saved just before `step` produced a diverged loss: move it aside
        (kept in ckpt/untrusted-<step>/) so that a rerun resumes from the one before."""
        latest = self.manager.latest_checkpoint
        if not latest or _prefix_step(latest) != step - 1:
            return
        aside = self.ckpt_dir / f"untrusted-{step - 1}"
        aside.mkdir(exist_ok=True)
        for f in self.ckpt_dir.glob(f"{Path(latest).name}.*"):
            shutil.move(str(f), aside / f.name)
        remaining = checkpoints.complete_checkpoints(self.ckpt_dir)
        if remaining:
            checkpoints.write_index(self.ckpt_dir, remaining[max(remaining)], remaining.values())
        else:
            (self.ckpt_dir / checkpoints.INDEX).unlink(missing_ok=True)
        self.manager = None
        self._open_checkpoints()
        print(f"note: moved {Path(latest).name} to {aside}: its own loss (step {step}) "
              "diverged", file=sys.stderr)

    def _check_loss(self, loss, step):
        """NonFiniteLossError for a NaN/Inf loss or a spike far above the recent losses."""
        spike = False
        if math.isfinite(loss) and len(self._losses) >= MIN_HISTORY:
            floor = 1e-4 * float(np.median(self._first_losses))
            spike = loss > LOSS_SPIKE * max(float(np.median(self._losses)), floor, 1e-12)
        if not math.isfinite(loss) or spike:
            self._distrust_latest(step)
            what = f"became {loss}" if not math.isfinite(loss) else \
                f"jumped to {loss:.4g} ({LOSS_SPIKE:g}x above its recent median)"
            raise NonFiniteLossError(f"loss {what} at step {step}; stopped without saving this "
                                     f"state. {self._advice()}")
        self._losses.append(loss)
        if len(self._first_losses) < MIN_HISTORY:
            self._first_losses.append(loss)

    def save(self):
        """Writes a checkpoint of the current step, only from a state the guard trusts."""
        step = int(self.step.numpy())
        if step == self._saved_step:
            return
        norm = self._weight_norm()
        if not math.isfinite(norm) or (self._trusted_norm and
                                       norm > NORM_JUMP * self._trusted_norm):
            why = ("weights became non-finite" if not math.isfinite(norm) else
                   f"weights exploded (global norm {norm:.3g}, {norm / self._trusted_norm:.3g}x "
                   f"that of the last trusted state)")
            raise NonFiniteLossError(f"{why} at step {step}; not saving them. {self._advice()}")
        manager = self._open_checkpoints()
        try:
            manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as err:  # TensorFlow's errors carry no errno
            io.remove_partial_files(self.ckpt_dir)
            for part in self.ckpt_dir.glob(f"ckpt-{step}.*"):  # written, never indexed
                part.unlink()
            code = err.errno if isinstance(err, OSError) else (
                errno.ENOSPC if io.is_disk_full(err.message) else errno.EIO)
            raise OSError(code, _one_line(getattr(err, "strerror", None) or err),
                          f"checkpoint {self.ckpt_dir}/ckpt-{step}") from None
        self._saved_step = step
        self._trusted_norm = norm

    def evaluate(self, writer, dataset=None):
        dataset = dataset if dataset is not None else self.task.eval_dataset()
        results = self.task.evaluate(self.model, dataset)
        step = int(self.step.numpy())
        with writer.as_default(step=step):
            for key, value in results.items():
                tf.summary.scalar(f"eval/{key}", value)
        io.write_json(self.workdir / "eval" / "train_eval.json",
                      {"step": step, **{k: float(v) for k, v in results.items()}})
        return results

    def _on_signal(self, signum, frame):
        """In the loop: stop after the current step and save; before it: stop at once."""
        if self._in_loop:
            self._stop_signal = signum
        else:
            raise Interrupted(signum, f"interrupted ({signal.Signals(signum).name}) before "
                                      "training started; nothing to save")

    def fit(self, from_step=None):
        """Runs to train.steps (or epochs), resuming from the last checkpoint in the workdir.

        Holds the workdir's lock throughout; refuses a config that changes the saved model
        before writing anything; records the attempt in run_info.json whatever its outcome.
        `from_step`: resume from ckpt-N, setting later checkpoints aside (kept).
        """
        prepare_workdir(self.workdir)
        with io.FolderLock(self.workdir, "training"):
            removed = [f"{sub}/{name}" for sub in ("", "ckpt", "eval")
                       for name in io.remove_partial_files(self.workdir / sub)]
            if removed:
                print(f"note: removed partial files of an interrupted write: "
                      f"{', '.join(r.lstrip('/') for r in removed)}", file=sys.stderr)
            prefix, _ = checkpoints.latest(self.ckpt_dir)
            log = RunLog(self.workdir, _prefix_step(prefix))
            handlers = {}
            if threading.current_thread() is threading.main_thread():
                handlers = {s: signal.signal(s, self._on_signal)
                            for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                results = self._fit(from_step, log)
            except BaseException as err:
                log.update(f"{type(err).__name__}: {_one_line(err)}", end_step=self.step.numpy())
                raise
            finally:
                for s, h in handlers.items():
                    signal.signal(s, h)
            log.update("finished", end_step=self.step.numpy())
            return results

    def _fit(self, from_step, log):
        tc = self.config.train
        config_lib.check_resume(self.config, self.workdir)
        if from_step is not None:
            aside = checkpoints.rewind(self.ckpt_dir, int(from_step))
            if aside:
                print(f"note: --from_step {from_step}: later checkpoints moved to {aside}",
                      file=sys.stderr)
        config_lib.save_json(self.config, self.workdir)
        start = self.restore_latest()
        log.update("running", step=start)
        if start >= self.steps:
            print(f"already trained to step {start} of {self.steps} in {self.workdir}")
            return {}
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: self.task.train_dataset(ctx))
        eval_data = self.task.eval_dataset()  # its files are checked now, not hours in
        iterator = iter(dataset)
        writer = tf.summary.create_file_writer(str(self.workdir / "tb"))
        log_every, ckpt_every, eval_every = tc.log_every, tc.ckpt_every, tc.eval_every
        bar = tqdm(total=self.steps, initial=start, desc=self.config.config_name,
                   dynamic_ncols=True, mininterval=1.0, file=sys.stdout)
        results = {}
        started = time.time()
        self._in_loop = True
        try:
            while int(self.step.numpy()) < self.steps:
                try:
                    loss, metrics = self._train_step(iterator)
                except (tf.errors.DataLossError, tf.errors.NotFoundError) as err:
                    raise DataError(f"the training data could not be read after step "
                                    f"{int(self.step.numpy())}: {_one_line(err)}") from None
                loss = float(loss)
                step = int(self.step.numpy())
                self._check_loss(loss, step)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                if step % log_every == 0 or step == self.steps:
                    with writer.as_default(step=step):
                        tf.summary.scalar("train/loss", loss)
                        for key, value in metrics.items():
                            tf.summary.scalar(f"train/{key}", value)
                        lr = self.optimizer.learning_rate
                        tf.summary.scalar("train/lr", lr() if callable(lr) else lr)
                        tf.summary.scalar("train/steps_per_s",
                                          (step - start) / (time.time() - started))
                    self.task.summarize(self.model, step, writer)
                if step % ckpt_every == 0 or step == self.steps:
                    self.save()
                if (eval_every and step % eval_every == 0) or step == self.steps:
                    results = self.evaluate(writer, eval_data)
                    bar.write(f"step {step}: " +
                              ", ".join(f"{k}={v:.4f}" for k, v in results.items()))
                if self._stop_signal is not None:
                    self.save()
                    raise Interrupted(self._stop_signal, f"interrupted at step {step}, "
                                      "checkpoint saved; rerun to resume")
        finally:
            self._in_loop = False
            bar.close()
            writer.flush()
        return results


def _cpu_time(config):
    """Rough wall time of config's run on 2 CPU cores (CPU_IMAGES_PER_S_480), as text."""
    images = int(config.train.steps) * int(config.train.batch_size)
    rate = CPU_IMAGES_PER_S_480[config.model.backbone.name]
    seconds = images / rate * (int(config.data.image_size) / 480) ** 2
    for unit, length in (("days", 86400), ("hours", 3600)):
        if seconds >= 2 * length:
            return f"~{seconds / length:.0f} {unit}"
    return f"~{max(1, round(seconds / 60))} min"


def no_gpu_warning(config, gpus):
    """The line printed before a full-size pose config trains where no GPU is visible (None
    otherwise, and for a run counted in epochs): what the run will roughly cost here and the
    same config's CPU recipe. Why: such a run renders its 480 px synthetic set and then trains
    at a few images per second for weeks, which nothing else would say. A warning: it goes on."""
    name, _, arg = str(config.config_name).partition(":")
    variants = [v for v in arg.split(",") if v]
    if gpus or config.task != "pose" or "cpu" in variants or not config.train.steps:
        return None
    recipe = f"{name}:{','.join(['cpu', *variants])}"
    cpu = config_lib.load_config(recipe)
    return (f"warning: no GPU found: {config.config_name} ({config.train.steps:,} steps x "
            f"{config.train.batch_size} images at {config.data.image_size} px) would train for "
            f"{_cpu_time(config)} on a 2-core CPU (an estimate from the measured step rate); "
            f"{recipe} is the CPU recipe ({_cpu_time(cpu)} by the same estimate); going on")


def dry_run(config):
    """Builds the model and prints its parameter counts on one line."""
    validate(config)
    task = build_task(config)
    try:
        model = task.build_model()
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"the config does not build a model: {_one_line(err)}") from None
    counts = task.count_params(model)
    print("params: " + " ".join(f"{k}={v}" for k, v in counts.items()))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m pose_era.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="NAME or NAME:ARG from configs/")
    parser.add_argument("--workdir", help="checkpoints, TensorBoard, config.json "
                                          "(default: runs/<config name>)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. --set train.steps=100 model.activation=era")
    parser.add_argument("--from_step", type=int, metavar="N",
                        help="resume from WORKDIR/ckpt/ckpt-N; later checkpoints are moved to "
                             "ckpt/set_aside-<time>/ (kept)")
    parser.add_argument("--dry_run", action="store_true",
                        help="build the model, print its parameter counts and exit")
    return parser.parse_args(argv)


def error_message(err):
    """The one line a CLI prints for an expected failure (None: not one of ours)."""
    if isinstance(err, OSError):
        return io.describe_os_error(err)
    if isinstance(err, tf.errors.OpError):
        return (f"TensorFlow: {_one_line(err.message)}" if not io.is_disk_full(err.message)
                else "the disk is full; free some space and rerun")
    if isinstance(err, (ValueError, RuntimeError, KeyError, io.LockedError)):
        return _one_line(err)
    return None


def main(argv=None):
    args = parse_args(argv)
    checkpoints.quiet_restore_logs()
    try:
        config = config_lib.apply_overrides(config_lib.load_config(args.config), args.set)
        if args.dry_run:
            dry_run(config)
            return 0
        warning = no_gpu_warning(config, tf.config.list_physical_devices("GPU"))
        if warning:
            print(warning, file=sys.stderr, flush=True)
        workdir = args.workdir or os.path.join("runs", args.config.replace(":", "_"))
        Trainer(config, workdir).fit(from_step=args.from_step)
    except Interrupted as stop:
        print(stop, file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("interrupted before training started; nothing to save", file=sys.stderr)
        return 130
    except (ConfigError, checkpoints.CheckpointError, NonFiniteLossError, DataError,
            io.LockedError, ValueError, OSError, tf.errors.OpError) as err:
        if os.environ.get("POSE_ERA_TRACEBACK"):
            raise
        print(f"error: {error_message(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
