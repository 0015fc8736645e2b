"""Fault injection (issue 12): each fault that lost work, gave a wrong answer or ran a stranger's
code is reproduced on a tiny run, then the fixed behaviour is checked; then every CLI turns each
error class into one line and exit status 2. Runs in-process where it can (seconds, not a
TensorFlow start-up per case). What each fault does and how to recover: docs/failures.md.
"""
import errno
import importlib.util
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import h36m
from data_pipelines.synthetic import records
from eval import h36m as eval_cli
from pose_era import io
from tests import tiny_pose_workdir
from tests.test_smpl_convert import _fake_smpl, _write_smpl_pkl
from training import config as config_lib
from training import checkpoints, driver as train

ROOT = Path(__file__).resolve().parents[1]
TOY = "tests/toy_config.py"


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_body_model = _tool("build_body_model")
make_synth = _tool("make_synth")


def train_cli(workdir, *sets, extra=()):
    return train.main(["--config", TOY, "--workdir", str(workdir), *extra,
                       *(["--set", *sets] if sets else [])])


def our_lines(text):
    """Output lines that are ours: TensorFlow's C++ start-up logging and tqdm bars aside."""
    return [l for l in text.splitlines() if l.strip() and "it/s" not in l and "?it" not in l
            and not l.startswith(("I0000", "W0000", "WARNING: All log"))]


def one_error_line(capfd, prefix="error:"):
    err = our_lines(capfd.readouterr().err)
    assert len([l for l in err if l.startswith(prefix)]) == 1, err
    assert err[-1].startswith(prefix), err
    return err[-1]


def weight_norm(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return max(float(np.abs(reader.get_tensor(k)).max()) for k, _ in tf.train.list_variables(prefix)
               if "_trainable_variables" in k and "OPTIMIZER_SLOT" not in k)


@pytest.fixture(scope="module")
def six_steps(tmp_path_factory):
    """W: a finished 6-step toy run with a checkpoint per step (ckpt-4, 5, 6 kept)."""
    workdir = tmp_path_factory.mktemp("faults") / "W"
    assert train_cli(workdir, "train.steps=6", "train.ckpt_every=1") == 0
    return workdir


@pytest.fixture
def w(six_steps, tmp_path):
    """A private copy of W."""
    copy = tmp_path / "W"
    shutil.copytree(six_steps, copy)
    return copy


def latest_step(workdir):
    """The step of the checkpoint TensorFlow's own index names."""
    return checkpoints.step_of(tf.train.latest_checkpoint(str(workdir / "ckpt")))


def saved_steps(workdir):
    """Steps of the ckpt-N files on disk (index and data present)."""
    return sorted(int(p.name[5:-6]) for p in (workdir / "ckpt").glob("ckpt-*.index")
                  if list(p.parent.glob(p.name[:-6] + ".data-*")))


# 1. the divergence guard -------------------------------------------------------------------

def test_exploding_run_never_checkpoints_the_blown_up_state(w, capfd):
    capfd.readouterr()
    assert train_cli(w, "train.steps=20", "train.ckpt_every=1", "optimizer.lr=1e9") == 2
    line = one_error_line(capfd)
    assert "ckpt-6" in line and "None" not in line and "set optimizer.clip_norm" in line
    assert latest_step(w) == 6 and max(saved_steps(w)) == 6
    assert all(weight_norm(str(w / "ckpt" / f"ckpt-{s}")) < 10 for s in saved_steps(w))
    # the workdir recovers: a sane learning rate resumes from ckpt-6 and trains on
    assert train_cli(w, "train.steps=9", "optimizer.lr=0.05") == 0
    assert "resuming from step 6 (ckpt-6)" in capfd.readouterr().out
    assert latest_step(w) == 9


def test_nan_message_with_clip_norm_set_and_from_step(w, capfd):
    capfd.readouterr()
    assert train_cli(w, "train.steps=20", "optimizer.lr=1e30", "optimizer.clip_norm=1.0") == 2
    line = one_error_line(capfd)
    assert "clip_norm is already 1" in line and "or set optimizer.clip_norm" not in line
    # --from_step goes back further; the later checkpoints are kept aside, not deleted
    assert train_cli(w, "train.steps=5", extra=["--from_step", "4"]) == 0
    out = capfd.readouterr()
    assert "resuming from step 4 (ckpt-4)" in out.out and "set_aside" in out.err
    assert latest_step(w) == 5
    aside = next((w / "ckpt").glob("set_aside-*"))
    assert sorted(p.name for p in aside.glob("*.index")) == ["ckpt-5.index", "ckpt-6.index"]


def test_checkpoint_whose_own_loss_is_nan_is_set_aside(w, capfd, monkeypatch):
    """ckpt-7 passes the weight check, but the loss computed from it (step 8) is NaN."""
    make_step = train.Trainer._make_train_step

    def nan_at_step_8(self, jit_compile):
        step_fn = make_step(self, jit_compile)

        def wrapped(iterator):
            loss, metrics = step_fn(iterator)
            return (float("nan") if int(self.step.numpy()) == 8 else loss), metrics
        return wrapped

    monkeypatch.setattr(train.Trainer, "_make_train_step", nan_at_step_8)
    capfd.readouterr()
    assert train_cli(w, "train.steps=20", "train.ckpt_every=1") == 2
    line = one_error_line(capfd)
    assert "loss became nan at step 8" in line and "resumes from ckpt-6" in line, line
    assert latest_step(w) == 6 and 7 not in saved_steps(w)
    assert (w / "ckpt" / "untrusted-7" / "ckpt-7.index").is_file()  # kept, not deleted


# 2. a resume with another config -----------------------------------------------------------

def test_model_changing_resume_is_refused_before_anything_is_written(w, capfd):
    before = (w / "config.json").read_bytes()
    capfd.readouterr()
    assert train_cli(w, "train.steps=8", "optimizer.name=adam", "train.seed=3") == 2
    line = one_error_line(capfd)
    assert "optimizer.name ('sgd' -> 'adam')" in line and "train.seed" in line
    assert (w / "config.json").read_bytes() == before
    starts = json.loads((w / "run_info.json").read_text())["starts"]
    assert starts[-1]["outcome"].startswith("ConfigError") and starts[-1]["step"] == 6
    # schedule keys may change; keys missing from an older config.json are compatible
    old = json.loads(before)
    del old["train"]["init_from"]
    (w / "config.json").write_text(json.dumps(old))
    assert train_cli(w, "train.steps=7", "train.log_every=1", "train.eval_every=7") == 0
    assert [s["outcome"] for s in json.loads((w / "run_info.json").read_text())["starts"]][-1] \
        == "finished"


@pytest.fixture(scope="module")
def pose_workdir(tmp_path_factory):
    """A tiny untrained ERA pose workdir (config.json + ckpt/)."""
    root = tmp_path_factory.mktemp("pose")
    workdir, config, _ = tiny_pose_workdir.make_workdir(root)
    return root, workdir


def test_restore_fails_when_saved_variables_would_be_dropped(pose_workdir, tmp_path):
    _, source = pose_workdir
    workdir = tmp_path / "relu"
    shutil.copytree(source, workdir)
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"]["activation"] == "era"
    config["model"]["activation"] = "relu"          # as a crashed `--set model.activation=relu`
    (workdir / "config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoints.CheckpointError, match="left unused"):
        checkpoints.restore(workdir)


# 3. the workdir lock -----------------------------------------------------------------------

def test_second_run_on_a_locked_workdir_says_who_holds_it(w, capfd):
    capfd.readouterr()
    with io.FolderLock(w, "training"):
        assert train_cli(w, "train.steps=8") == 2
    line = one_error_line(capfd)
    assert f"pid {os.getpid()} on host" in line and latest_step(w) == 6
    # a holder killed with kill -9 leaves no stale lock
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pose_era.io import FolderLock\n"
         f"with FolderLock({str(w)!r}, 'test'):\n    print('held', flush=True); time.sleep(60)"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    assert train_cli(w, "train.steps=7") == 0 and latest_step(w) == 7


# 4. a lost or garbled checkpoint index -----------------------------------------------------

@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_lost_index_resumes_from_the_files_present(w, capfd, damage):
    index = w / "ckpt" / "checkpoint"
    index.unlink() if damage == "delete" else index.write_text("garbage {{{\n")
    assert checkpoints.find(w)[1].endswith("ckpt-6")  # evaluation uses the newest file too
    capfd.readouterr()
    assert train_cli(w, "train.steps=7") == 0
    out = capfd.readouterr()
    assert "resuming from step 6 (ckpt-6)" in out.out and "using ckpt-6" in out.err
    assert {4, 5, 6, 7} <= set(saved_steps(w))  # none lost


# 5. a malicious pickle ---------------------------------------------------------------------

class _Evil:
    """Unpickling this would create a marker folder (it stands in for os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_malicious_smpl_pickle_and_npz_do_not_run(tmp_path, capfd):
    marker = tmp_path / "pwned"
    evil_pkl = tmp_path / "evil.pkl"
    evil_pkl.write_bytes(pickle.dumps({"v_template": _Evil(marker)}, protocol=2))
    evil_npz = tmp_path / "evil.npz"
    payload = np.empty(1, object)
    payload[0] = _Evil(marker)
    np.savez(evil_npz, v_template=payload, imgname=payload, center=payload, scale=payload)
    for path in (evil_pkl, evil_npz):
        capfd.readouterr()
        rc = build_body_model.main(["--source", "smpl", "--path", str(path),
                                    "--out", str(tmp_path / "out.npz")])
        assert not marker.exists(), f"{path.name} ran its payload"
        assert rc == 2 and "not allowed" in one_error_line(capfd)
    with pytest.raises(ValueError, match="not allowed"):
        h36m.load_npz(str(evil_npz))
    assert not marker.exists()
    # (tests/test_smpl_convert.py reads the real SMPL layout through the same allow-list)


# 6. SIGINT / SIGTERM -----------------------------------------------------------------------

@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_the_current_step(tmp_path, capfd, monkeypatch, signum, code):
    workdir = tmp_path / "run"
    seen = {}
    training = threading.Event()
    check_loss = train.Trainer._check_loss

    def watched(self, loss, step):
        check_loss(self, loss, step)
        if step >= 3:
            training.set()
        if step > 100000:  # the signal never came: end the run instead of hanging the tests
            raise RuntimeError("no signal arrived")

    monkeypatch.setattr(train.Trainer, "_check_loss", watched)

    def send_when_training():
        seen["training"] = training.wait(300)
        if seen["training"]:  # only into the loop: elsewhere SIGTERM would end pytest itself
            os.kill(os.getpid(), signum)

    sender = threading.Thread(target=send_when_training)
    sender.start()
    rc = train_cli(workdir, "train.steps=1000000", "train.ckpt_every=100000")
    sender.join()
    err = capfd.readouterr().err
    assert rc == code and seen["training"], err
    step = latest_step(workdir)
    assert step > 0 and f"interrupted at step {step}, checkpoint saved; rerun to resume" in err
    assert json.loads((workdir / "run_info.json").read_text())["starts"][-1]["end_step"] == step


# 7-10. every CLI: one line, exit 2 -------------------------------------------------------

def _read_only(monkeypatch, folder):
    """Writes under `folder` fail as on a read-only mount (also as root, who ignores chmod)."""
    folder = str(Path(folder).resolve())
    real_open, real_os_open = open, os.open

    def guarded(path, flags_or_mode):
        writes = (flags_or_mode & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
                  if isinstance(flags_or_mode, int) else any(c in flags_or_mode for c in "wax+"))
        if writes and str(Path(path).resolve()).startswith(folder):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def fake_open(path, mode="r", *args, **kwargs):
        guarded(path, mode)
        return real_open(path, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        guarded(path, flags)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory, pose_workdir):
    """A tiny synthetic dataset (2 train, 2 test images) made with the tiny body."""
    root, _ = pose_workdir
    out = root / "synth"  # the tiny pose workdir's data.dir
    assert make_synth.main(["--out", str(out), "--train", "2", "--test", "2", "--workers", "0",
                            "--image-size", "64", "--body", str(root / "tiny_body.npz"),
                            "--no-progress"]) == 0
    return out


def _pose_sets(root, *extra):
    return ["--config", "mixer_64:cpu", "--set", *tiny_pose_workdir.tiny_overrides(root),
            "train.steps=1", "train.batch_size=2", "data.val_size=2", *extra]


def test_train_cli_errors_are_one_line(tmp_path, pose_workdir, tiny_set, capfd, monkeypatch):
    root, _ = pose_workdir
    random_npz = tmp_path / "random.npz"
    np.savez(random_npz, a=np.zeros(3))
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(pickle.dumps({"a": np.zeros(100)})[:50])
    bad_syntax = tmp_path / "bad_config.py"
    bad_syntax.write_text("def get_config(:\n")
    other_body = tmp_path / "other_body.npz"
    other_body.write_bytes((root / "tiny_body.npz").read_bytes() + b"\0")  # another file
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    w = tmp_path / "w"
    cases = {
        "image size": (_pose_sets(root, "data.image_size=100"), "multiple of 32"),
        "activation": (_pose_sets(root, "model.activation=foo"), "model.activation='foo'"),
        "precision": (["--config", TOY, "--set", "train.mixed_precision=foo16"], "foo16"),
        "data name": (_pose_sets(root, "data.name=foo", "data.dir="), "data.name='foo'"),
        "syntax": (["--config", str(bad_syntax)], "syntax error at line 1"),
        "random npz body": (_pose_sets(root, f"body.path={random_npz}"), "missing keys"),
        "truncated pickle body": (_pose_sets(root, f"body.path={truncated}"), "not a readable"),
        "other body on a set": (_pose_sets(root, f"body.path={other_body}",
                                           f"data.dir={tiny_set}"), "was made with another body model"),
        "batch 0": (["--config", TOY, "--set", "train.batch_size=0"], "train.batch_size=0"),
        "steps -3": (["--config", TOY, "--set", "train.steps=-3"], "train.steps=-3"),
        "workdir is a file": (["--config", TOY, "--workdir", str(a_file)], "not a folder"),
    }
    for name, (args, needle) in cases.items():
        capfd.readouterr()
        if "--workdir" not in args:
            args = [*args[:2], "--workdir", str(w / name.replace(" ", "_")), *args[2:]]
        assert train.main(args) == 2, name
        line = one_error_line(capfd)
        assert needle in line, (name, line)
    # a read-only workdir
    ro = tmp_path / "ro"
    ro.mkdir()
    _read_only(monkeypatch, ro)
    assert train.main(["--config", TOY, "--workdir", str(ro)]) == 2
    assert "read-only" in one_error_line(capfd)


def test_full_disk_cleans_partial_files_and_stale_ones_at_start(w, capfd, monkeypatch):
    (w / "config.json.tmp").write_text("")                 # left by old code on a full disk
    (w / "ckpt" / "ckpt-99_temp").mkdir()                   # left by a kill during a save
    (w / "ckpt" / "ckpt-99_temp" / "part-00000").write_bytes(b"x" * 1000)
    real_save = tf.train.CheckpointManager.save

    def full_disk(self, checkpoint_number=None, **kwargs):
        partial = Path(self.directory) / f"ckpt-{checkpoint_number}_temp"
        partial.mkdir()
        (partial / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x" * 1000)
        raise tf.errors.ResourceExhaustedError(None, None, f"{partial}/part: No space left on "
                                               "device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_disk)
    capfd.readouterr()
    assert train_cli(w, "train.steps=8") == 2
    line = one_error_line(capfd)
    assert "cannot write checkpoint" in line and "ckpt/ckpt-8: the disk is full" in line
    assert not list(w.glob("*.tmp")) and not list((w / "ckpt").glob("*_temp"))
    monkeypatch.setattr(tf.train.CheckpointManager, "save", real_save)
    assert train_cli(w, "train.steps=8") == 0 and latest_step(w) == 8


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (needs root; skipped elsewhere), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                                            str(disk)], capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_really_full_disk(six_steps, tiny_disk, capfd):
    w = tiny_disk / "W"
    shutil.copytree(six_steps, w)
    free = shutil.disk_usage(tiny_disk).free
    (tiny_disk / "filler").write_bytes(b"\0" * (free - 16 * 1024))
    capfd.readouterr()
    assert train_cli(w, "train.steps=40", "train.ckpt_every=1") == 2
    assert "disk is full" in one_error_line(capfd)
    assert not list((w / "ckpt").glob("*_temp")) and not list((w / "ckpt").glob("ckpt-7.*"))
    assert latest_step(w) == 6
    (tiny_disk / "filler").unlink()
    assert train_cli(w, "train.steps=8", "train.ckpt_every=1") == 0 and latest_step(w) == 8


def test_data_faults(w, tmp_path, tiny_set, capfd):
    # a bad validation npz stops the run before its first step, not after training
    bad = tmp_path / "bad_val.npz"
    np.savez(bad, imgname=np.array(["a.jpg"]))
    config = config_lib.apply_overrides(config_lib.load_config(TOY), ["train.steps=50"])
    with config.unlocked():
        config.task, config.eval_npz = "tests.faulty_task.FaultyTask", str(bad)
    trainer = train.Trainer(config, tmp_path / "val")
    with pytest.raises(ValueError, match="missing keys center, scale"):
        trainer.fit()
    assert int(trainer.step.numpy()) == 0 and not (tmp_path / "val" / "ckpt").exists()
    # a zero-row npz
    empty = tmp_path / "empty.npz"
    np.savez(empty, imgname=np.array([], str), center=np.zeros((0, 2)), scale=np.zeros(0))
    with pytest.raises(ValueError, match="holds no samples"):
        h36m.load_npz(str(empty))
    # a truncated TFRecord is named
    shard = tmp_path / "train-00000-of-00001.tfrecord"
    shard.write_bytes(Path(records.train_files(tiny_set)[0]).read_bytes()[:-100])
    with pytest.raises(ValueError, match=f"{shard.name} is truncated"):
        records.check_files([str(shard)])
    records.check_files(records.train_files(tiny_set))  # the intact files pass


def test_make_synth_rerun_and_body_file_mode(tiny_set, pose_workdir, tmp_path, capfd):
    root, _ = pose_workdir
    args = ["--out", str(tiny_set), "--train", "2", "--test", "2", "--workers", "0",
            "--image-size", "64", "--body", str(root / "tiny_body.npz"), "--no-progress"]
    capfd.readouterr()
    assert make_synth.main(args) == 0
    assert "already complete" in capfd.readouterr().out
    assert make_synth.main([*args[:3], "3", *args[4:]]) == 2
    assert "train differ" in one_error_line(capfd, "make_synth:")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert make_synth.main(["--out", str(a_file), *args[2:]]) == 2
    assert "is a file" in one_error_line(capfd, "make_synth:")
    assert (root / "tiny_body.npz").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert (tiny_set / "meta.json").is_file()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_build_body_model_out_errors(tmp_path, capfd):
    _write_smpl_pkl(tmp_path / "smpl.pkl", _fake_smpl(num_vertices=40, num_betas=4)[0])
    for out in (tmp_path, tmp_path / "a_file" / "x.npz"):
        (tmp_path / "a_file").write_text("x")
        capfd.readouterr()
        assert build_body_model.main(["--source", "smpl", "--path", str(tmp_path / "smpl.pkl"),
                                      "--out", str(out), "--markers", "8"]) == 2
        one_error_line(capfd)


def test_eval_cli_checkpoint_faults_and_read_only_workdir(pose_workdir, tiny_set, tmp_path,
                                                          capfd, monkeypatch):
    root, source = pose_workdir
    shutil.copytree(source, tmp_path / "w")
    w = tmp_path / "w"
    prefix = w / "ckpt" / f"ckpt-{tiny_pose_workdir.STEP}"
    data = next((w / "ckpt").glob("*.data-*"))
    intact = data.read_bytes()
    # a read-only workdir: the table is printed, then one line says the JSON was not saved
    _read_only(monkeypatch, w / "eval")
    capfd.readouterr()
    assert eval_cli.main(["--ckpt", str(w)]) == 2
    captured = capfd.readouterr()
    assert "MPJPE" in captured.out
    err = our_lines(captured.err)
    assert err[-1].startswith("error:") and "read-only" in err[-1] and "not saved" in err[-1]
    monkeypatch.undo()
    # a truncated .data file
    data.write_bytes(intact[: len(intact) // 2])
    assert eval_cli.main(["--ckpt", str(w)]) == 2
    assert "damaged" in one_error_line(capfd)
    data.write_bytes(intact)
    # a garbage index: the newest complete checkpoint is used, with a note
    (w / "ckpt" / "checkpoint").write_text("\x00garbage")
    assert checkpoints.find(w)[1] == str(prefix)
    # a model mismatch: one line, and no TensorFlow warnings after it (own process: they come
    # when the interpreter exits)
    config = json.loads((w / "config.json").read_text())
    config["model"]["activation"] = "relu"
    (w / "config.json").write_text(json.dumps(config))
    result = subprocess.run([sys.executable, "-m", "eval.h36m", "--ckpt", str(w)], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2"),
                            capture_output=True, text=True, timeout=300)
    lines = our_lines(result.stderr)
    assert result.returncode == 2 and lines[-1].startswith("error:") and "unused" in lines[-1], \
        result.stderr
    assert not [l for l in lines if "WARNING" in l], lines


def test_atomic_writes_keep_suffixes_leave_nothing_on_failure_and_are_cleaned_up(tmp_path):
    """pose_era.io's one write mechanism: a writer that needs a file name sees the real suffix,
    a failed write keeps the old file and leaves no temporary, and a temporary left by a killed
    process is recognised as partial (and nothing else is)."""
    target = tmp_path / "backbone.weights.h5"
    target.write_text("old")
    seen = []
    io.write_via_path(target, lambda tmp: (seen.append(tmp.name), tmp.write_text("new")))
    assert seen[0].startswith(".backbone.weights.h5.") and seen[0].endswith(".tmp.weights.h5")
    assert target.read_text() == "new"

    def failing(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as info:
        io.write_via_path(target, failing)
    assert info.value.filename == str(target) and target.read_text() == "new"
    with pytest.raises(OSError):
        io.atomic_write(tmp_path / "a.json", lambda f: failing(Path(f.name)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backbone.weights.h5"]
    (tmp_path / ".backbone.weights.h5.x1y2.tmp.weights.h5").write_text("killed")
    (tmp_path / ".a.json.x1y2.tmp").write_text("killed")
    (tmp_path / "notes.tmp.txt").write_text("a user's file")
    assert io.remove_partial_files(tmp_path) == [".a.json.x1y2.tmp",
                                                 ".backbone.weights.h5.x1y2.tmp.weights.h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backbone.weights.h5", "notes.tmp.txt"]
