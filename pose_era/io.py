"""Small file-system helpers shared by the driver, the tools and the data writers.

Why one module: atomic writes, clean-up of partial files, the workdir lock, run provenance (the
git commit, the machine) and the wording of OSError messages were copied (slightly differently)
into several files. A file written here is complete or absent (temporary file in the same folder, then os.replace), gets the mode a plain
`open` would give it (0666 minus the umask, not mkstemp's 0600), and a failed write leaves no
temporary file behind.
"""
import errno
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

TMP_SUFFIX = ".tmp"

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None


def _umask_mode():
    """0666 minus the umask; read from /proc where possible (os.umask would briefly change it
    for every thread of the process)."""
    try:
        with open("/proc/self/status") as f:
            mask = next(int(l.split()[1], 8) for l in f if l.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def write_via_path(path, write, keep_suffix=True):
    """Calls write(tmp_path) on a temporary file beside `path`, then renames it onto `path`.

    For writers that take a file name (Keras' .weights.h5 checks its suffix, cv2.imwrite picks
    the format by it): the temporary name ends in `path`'s own suffixes when keep_suffix. It is
    `.NAME.<random>.tmp[.suffixes]`, which remove_partial_files recognises after a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = TMP_SUFFIX + ("".join(path.suffixes) if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError) and not err.filename:  # write() errors name no file
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise
    return path


def atomic_write(path, write, binary=True):
    """Calls write(file) on a temporary file beside `path`, then renames it to `path`."""
    def to_file(tmp):
        with open(tmp, "wb" if binary else "w") as f:
            write(f)
    return write_via_path(path, to_file, keep_suffix=False)


def write_text(path, text):
    """Writes `text` to `path` atomically; returns the path."""
    return atomic_write(path, lambda f: f.write(text), binary=False)


def write_json(path, payload):
    """Writes indented, key-sorted JSON atomically; returns the path."""
    return write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def code_version(root=None, ignore=()):
    """{commit, dirty} of the git checkout `root` (default: the one this code runs from; None
    outside one), so that a result can be traced to the code that produced it. Changes to the
    files in `ignore` (a sweep's own results file, rewritten after every run) do not count."""
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=root, capture_output=True, text=True, timeout=10,
                                check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    ignored = {Path(p).resolve() for p in ignore}
    changed = [line for line in status if (root / line[3:]).resolve() not in ignored]
    return {"commit": commit, "dirty": bool(changed)}


def cpu_model():
    """The CPU's model name (benchmark tables name the machine)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line():
    """Cores, CPU and load average: the machine line of every benchmark and ablation table."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cores} cores ({cpu_model()}), load average {load}"


def sha256_of(path, chunk=1 << 20):
    """Hex SHA-256 of a file, read in chunks (provenance of data sets, models, downloads)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_partial_files(folder):
    """Removes what an interrupted write leaves in `folder` (not recursive): our atomic
    writes' temporaries (*.tmp, .NAME.*.tmp.suffix), TensorFlow's checkpoint temporaries (ckpt-N_temp/) and its
    half-written checkpoint files (*.tempstate*). Returns the names removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        name = entry.name
        ours = name.endswith(TMP_SUFFIX) or (name.startswith(".") and f"{TMP_SUFFIX}." in name)
        if ours or name.endswith("_temp") or ".tempstate" in name or \
                name.startswith("checkpoint.tmp"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return sorted(removed)


_REASONS = {errno.ENOSPC: "the disk is full; free some space and rerun",
            errno.EDQUOT: "the disk quota is exceeded; free some space and rerun",
            errno.EROFS: "the file system is read-only; choose a writable folder",
            errno.EACCES: "permission denied; choose a folder you can write to",
            errno.EPERM: "permission denied; choose a folder you can write to",
            errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
            errno.EEXIST: "it exists and is a file, not a folder; choose another path",
            errno.EISDIR: "it is a folder, not a file; choose another path"}


def describe_os_error(err, what="cannot write"):
    """One line for an OSError: the path, the system's reason and what to do."""
    reason = _REASONS.get(err.errno, err.strerror or str(err))
    if err.filename:
        return f"{what} {err.filename}: {reason}"
    if err.errno in _REASONS:
        return f"{what}: {reason}"
    return (str(reason).strip().splitlines() or [type(err).__name__])[0]


def is_disk_full(message):
    """True for TensorFlow's wording of a full disk (its errors carry no errno)."""
    text = str(message).lower()
    return "no space left" in text or "disk quota" in text


class LockedError(RuntimeError):
    """Another process holds the lock; the message names it."""


class FolderLock:
    """An exclusive fcntl lock on FOLDER/.lock for the life of a `with` block.

    The kernel drops the lock when the process exits, kill -9 included, so a stale lock file
    never blocks a later run; the file's content (pid, host, start time) only says who holds it.
    """

    NAME = ".lock"

    def __init__(self, folder, purpose):
        self.path = Path(folder) / self.NAME
        self.purpose = purpose
        self._file = None

    def __enter__(self):
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            self._file = None
            raise LockedError(f"{self.path.parent} is in use by {holder} ({self.purpose}); "
                              "wait for it to finish or use another folder") from None
        try:
            self._file.seek(0)
            self._file.truncate()
            self._file.write(f"pid {os.getpid()} on host {socket.gethostname()} since "
                             f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
            self._file.flush()
        except OSError as err:  # e.g. a full disk: name the file
            self.__exit__()
            raise OSError(err.errno, err.strerror, str(self.path)) from None
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            try:
                self._file.seek(0)
                self._file.truncate()
                self._file.close()  # closing releases the flock
            except OSError:  # a full disk cannot flush the holder line: the lock goes anyway
                os.close(self._file.fileno())
            self._file = None
        return False
