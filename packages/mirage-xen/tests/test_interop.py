"""Real peers against our daemon: Debian's xenstore-utils and pyxs."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

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
