"""Shared helpers: running the real ``git`` with a clean, fixed environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GIT = shutil.which("git")

needs_git = pytest.mark.skipif(GIT is None, reason="needs the git command (apt package git)")

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "A U Thor",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "C O Mitter",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_AUTHOR_DATE": "1700000000 +0100",
    "GIT_COMMITTER_DATE": "1700000000 +0100",
}


def git(*args: str, cwd: Path | str, input: bytes | None = None) -> bytes:
    """Run ``git args`` in ``cwd``; its standard output (a failure raises)."""
    assert GIT is not None
    result = subprocess.run(
        [GIT, *args], cwd=cwd, input=input, capture_output=True, env=GIT_ENV, check=False
    )
    if result.returncode:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr.decode()}")
    return result.stdout


# A writer killed with SIGKILL over and over. One Python process imports the store
# once, then forks a writer per round (a fresh backend each time, as a restarted
# process would open), waits until it has opened the store, lets it commit for a
# random 0-25 ms and kills it: hundreds of kills land at random points of a commit
# in a few seconds. A commit is acknowledged
# by a line written to a pipe after ``set`` returned; a line in the pipe survives the
# writer's death. The killed writer's stale locks are removed, as a user would
# after a crash (git leaves them too).
_KILLER = """
import os, random, signal, sys, tempfile, time, traceback
from pathlib import Path
from mirage.irmin import GitBackend, Info, PackBackend, Repo, Store
root, kind, rounds, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
with tempfile.TemporaryDirectory() as tmp:  # first calls' costs paid once, not per writer
    warm = GitBackend.init(tmp) if kind == "git" else PackBackend(tmp)
    Store(Repo(warm), "main").set("a/b/c", b"warm", Info(date=0))
n = 0
for _ in range(rounds):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            backend = GitBackend(root) if kind == "git" else PackBackend(root)
            store = Store(Repo(backend), "main")
            store.head()
            os.write(w, b"ready\\n")
            while True:
                head = store.set(f"k/{n % 7}/{n}", b"%d" % n * 100, Info(date=n))
                os.write(w, b"%d %s\\n" % (n, head.hex().encode()))
                n += 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        ready = f.read(6)
        time.sleep(rng.random() * 0.025)
        os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
        if ready != b"ready\\n" or os.WTERMSIG(status) != signal.SIGKILL:
            sys.exit(f"the writer failed ({status:#x})")
        out = f.read()
    sys.stdout.buffer.write(out)
    lines = out.split(b"\\n")
    if len(lines) >= 2:
        n = int(lines[-2].split()[0]) + 1
    for lock in root.rglob("*.lock"):
        lock.unlink()
sys.stdout.flush()
"""


def kill_writer_repeatedly(root: Path, kind: str, rounds: int, seed: int) -> dict[int, str]:
    """Run the writer ``rounds`` times on the repository at ``root`` (``kind``:
    ``git`` or ``pack``), killing it each time; the acknowledged commits (number to
    commit id)."""
    out = subprocess.run(
        [sys.executable, "-c", _KILLER, str(root), kind, str(rounds), str(seed)],
        capture_output=True,
        check=True,
        timeout=600,
    ).stdout
    acknowledged: dict[int, str] = {}
    for line in out.decode().splitlines():
        number, head = line.split()
        acknowledged[int(number)] = head
    return acknowledged
