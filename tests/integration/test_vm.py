"""The static-website example, unchanged, as a virtual machine answering the host
kernel's HTTP client through our own TCP/IP stack inside the guest, over a TAP device.

The boot matrix (tools/boot_matrix.py, nox -s boot) asks the same website through
QEMU's user-mode network on every target; this test wires the guest's NIC to a TAP
device of a throw-away network namespace instead, where the host kernel is the peer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Mirage

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or shutil.which("dpkg-deb") is None,
    reason="needs qemu-system-x86_64 (apt-get install qemu-system-x86) and Debian's dpkg-deb",
)


TAP = ("--vm-net", "tap:mtap0")


def _netns_skip_reason() -> str | None:
    try:
        from mirage.net.testing import netns_skip_reason
    except ImportError:
        return "needs mirage-net's testing helpers"
    return netns_skip_reason()


def _wait_for(child: subprocess.Popen[str], text: str, timeout: float = 180) -> str:
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line and child.poll() is not None:
            break
        seen += line
        if text in line:
            return line
    raise AssertionError(f"no {text!r} on the console:\n{seen}")


def _get(url: str, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_static_website_answers_over_tap_from_a_virtio_guest(
    example: Callable[[str], Path], mirage: Mirage
) -> None:
    reason = _netns_skip_reason()
    if reason:
        pytest.skip(reason)
    from mirage.net.testing import inside_netns, ip

    directory = example("static-website")
    result = mirage(directory, "configure", "-t", "virtio")
    assert result.returncode == 0, result.stderr
    result = mirage(directory, "build", timeout=600)
    assert result.returncode == 0, result.stderr
    with inside_netns():
        ip("tuntap", "add", "dev", "mtap0", "mode", "tap")
        ip("addr", "add", "10.0.0.1/24", "dev", "mtap0")
        ip("link", "set", "mtap0", "up")
        child = subprocess.Popen(
            [sys.executable, "-m", "mirage.core", "-C", str(directory), "run", *TAP],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            line = _wait_for(child, "serving")
            assert line == "static-website: serving on http://10.0.0.2:8080/\n"
            assert b"Hello from a unikernel" in _get("http://10.0.0.2:8080/")
        finally:
            child.terminate()
            child.communicate(timeout=60)
    assert child.returncode == 0
