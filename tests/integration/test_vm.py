"""The static-website example, unchanged, as a virtual machine answering HTTP."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Mirage


@pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or shutil.which("dpkg-deb") is None,
    reason="needs qemu-system-x86_64 (apt-get install qemu-system-x86) and Debian's dpkg-deb",
)
def test_static_website_answers_from_a_virtio_guest(
    example: Callable[[str], Path], mirage: Mirage
) -> None:
    directory = example("static-website")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = mirage(directory, "configure", "-t", "virtio", "--vm-forward", f"{port}:8080")
    assert result.returncode == 0, result.stderr
    result = mirage(directory, "build", timeout=600)
    assert result.returncode == 0, result.stderr
    child = subprocess.Popen(
        [sys.executable, "-m", "mirage.core", "-C", str(directory), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 180
        line = ""
        while "serving" not in line and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line and child.poll() is not None:
                break
        assert line == "static-website: serving on http://localhost:8080/\n"
        url = f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(url, timeout=60) as response:
            assert response.status == 200
            assert b"Hello from a unikernel" in response.read()
    finally:
        child.terminate()
        child.communicate(timeout=60)
