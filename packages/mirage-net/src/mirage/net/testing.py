"""Throw-away network namespaces for the tests that need real Linux interfaces.

``inside_netns()`` creates a namespace with ``ip netns add``, moves the calling thread
into it (``setns``), and on exit moves back and deletes it. Namespaces are per
thread, so the test's event loop and the ``ip`` commands it runs see only the fresh
namespace. ``netns_skip_reason()`` names what is missing when this cannot work.

Shipped for the tests of this package and of the packages built on it (mirage-tcpip).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000


def netns_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (creates a network namespace with ip netns)"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


@contextmanager
def inside_netns() -> Iterator[str]:
    name = "mirage-test-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            ip("link", "set", "lo", "up")
            yield name
        finally:
            _setns(original)
    finally:
        os.close(original)
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
