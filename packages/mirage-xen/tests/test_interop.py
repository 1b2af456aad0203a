"""Real peers against our daemon: Debian's xenstore-utils and pyxs."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any

import pytest

from mirage.xen.xenstore import Client, Perm

needs_utils = pytest.mark.skipif(
    shutil.which("xenstore-write") is None,
    reason="xenstore-utils (Debian package) is not installed",
)


def xs(socket_path: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        env={**os.environ, "XENSTORED_PATH": socket_path},
        capture_output=True,
        text=True,
        timeout=20,
        check=check,
    )


@needs_utils
def test_xenstore_utils(xenstored: str) -> None:
    xs(xenstored, "xenstore-write", "/t/a", "1", "/t/b", "two words")
    assert xs(xenstored, "xenstore-read", "/t/a").stdout == "1\n"
    assert xs(xenstored, "xenstore-read", "/t/a", "/t/b").stdout == "1\ntwo words\n"
    assert xs(xenstored, "xenstore-list", "/t").stdout.split() == ["a", "b"]
    xs(xenstored, "xenstore-chmod", "/t/a", "n0", "r5")
    listing = xs(xenstored, "xenstore-ls", "-p", "/t").stdout
    assert 'a = "1"' in listing and "(n0,r5)" in listing
    assert xs(xenstored, "xenstore-exists", "/t/b").returncode == 0
    xs(xenstored, "xenstore-rm", "/t/b")
    assert xs(xenstored, "xenstore-exists", "/t/b", check=False).returncode != 0
    failed = xs(xenstored, "xenstore-read", "/t/missing", check=False)
    assert failed.returncode != 0 and "couldn't read path" in failed.stderr
    with Client(xenstored) as c:  # what the tools wrote, seen by our client
        assert c.read("/t/a") == b"1"
        assert c.get_perms("/t/a") == (Perm("n", 0), Perm("r", 5))
        assert c.directory("/t") == ["a"]


@needs_utils
def test_xenstore_ls_of_a_large_directory(xenstored: str) -> None:
    """More children than one message holds: libxenstore falls back to DIRECTORY_PART."""
    names = [f"node-{i:04d}-{'x' * 30}" for i in range(300)]
    with Client(xenstored) as c:
        for name in names:
            c.write(f"/big/{name}", "v")
    assert xs(xenstored, "xenstore-list", "/big").stdout.split() == names


@needs_utils
def test_xenstore_watch(xenstored: str) -> None:
    watcher = subprocess.Popen(
        ["xenstore-watch", "-n", "2", "/wt"],
        env={**os.environ, "XENSTORED_PATH": xenstored},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline() == "/wt\n"  # the initial event
        with Client(xenstored) as c:
            c.write("/wt/child", "1")
        assert watcher.stdout.readline() == "/wt/child\n"
        assert watcher.wait(10) == 0
    finally:
        watcher.kill()
        watcher.wait()


def test_pyxs(xenstored: str) -> None:
    pyxs = pytest.importorskip("pyxs", reason="pyxs (PyPI) is not installed")
    with pyxs.Client(unix_socket_path=xenstored) as c:
        c[b"/py/x"] = b"hi"
        assert c[b"/py/x"] == b"hi"
        assert c.list(b"/py") == [b"x"]
        assert c.exists(b"/py/x") and not c.exists(b"/py/none")
        c.set_perms(b"/py/x", [b"n0", b"r7"])
        assert c.get_perms(b"/py/x") == [b"n0", b"r7"]
        c.transaction()
        c[b"/py/y"] = b"2"
        assert c.commit()
        assert c.get_domain_path(3) == b"/local/domain/3"
        monitor = c.monitor()
        monitor.watch(b"/py", b"tok")
        events = monitor.wait()
        assert next(events) == (b"/py", b"tok")
        with Client(xenstored) as ours:
            ours.write("/py/z", "3")
            time.sleep(0.01)
        assert next(events) == (b"/py/z", b"tok")
        c.delete(b"/py/x")
    with Client(xenstored) as ours:
        assert ours.directory("/py") == ["y", "z"]


def libxenstore() -> object:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("xenstore") or "libxenstore.so.4"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        pytest.skip("libxenstore (Debian package libxenstore4) is not installed")
    lib.xs_open.restype = ctypes.c_void_p
    lib.xs_open.argtypes = [ctypes.c_ulong]
    lib.xs_close.argtypes = [ctypes.c_void_p]
    lib.xs_control_command.restype = ctypes.c_void_p
    lib.xs_control_command.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    lib.xs_set_target.restype = ctypes.c_bool
    lib.xs_set_target.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    return lib


def test_control_and_set_target_through_libxenstore(
    xenstored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Xen's own client library sends XS_CONTROL and XS_SET_TARGET; its errno is the
    error name our daemon answered."""
    import ctypes
    import errno

    lib: Any = libxenstore()
    monkeypatch.setenv("XENSTORED_PATH", xenstored)
    handle = lib.xs_open(0)
    assert handle
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]

    def control(cmd: bytes, data: bytes = b"") -> bytes | int:
        ctypes.set_errno(0)
        got = lib.xs_control_command(handle, cmd, data or None, len(data))
        if not got:
            return ctypes.get_errno()
        text = ctypes.string_at(got)
        libc.free(got)
        return text

    try:
        assert control(b"check") == b"OK"
        assert control(b"print", b"from libxenstore\0") == b"OK"
        assert b"check" in control(b"help")  # type: ignore[operator]
        assert control(b"no-such-command") == errno.EINVAL
        assert not lib.xs_set_target(handle, 7, 8)
        assert ctypes.get_errno() == errno.ENOENT
    finally:
        lib.xs_close(handle)
