from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def daemon_command() -> list[str]:
    """The ``mirage-xenstored`` console script of this environment."""
    script = shutil.which("mirage-xenstored", path=os.path.dirname(sys.executable))
    if script is not None:
        return [script]
    return [sys.executable, "-c", "from mirage.xen.xenstore._daemon import main; main()"]


@pytest.fixture
def daemon() -> list[str]:
    """The command that starts ``mirage-xenstored``."""
    return daemon_command()


@pytest.fixture
def xenstored() -> Iterator[str]:
    """A ``mirage-xenstored`` process (the console script's module) on a fresh socket."""
    root = Path(tempfile.mkdtemp(prefix="mxs"))
    path = str(root / "socket")
    proc = subprocess.Popen([*daemon_command(), "--socket", path])
    try:
        for _ in range(500):
            if os.path.exists(path):
                with socket.socket(socket.AF_UNIX) as s:
                    try:
                        s.connect(path)
                        break
                    except OSError:
                        pass
            if proc.poll() is not None:
                raise RuntimeError("mirage-xenstored exited")
            time.sleep(0.01)
        yield path
    finally:
        proc.terminate()
        assert proc.wait(10) == 0, "mirage-xenstored must stop cleanly on SIGTERM"
        shutil.rmtree(root, ignore_errors=True)
