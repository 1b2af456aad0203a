"""The store over HTTP: the request codec, the server and its client, long-poll
watches, watches of refs moved by ``git`` itself, and the ``watch``/``serve``
commands."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GIT_ENV, git, needs_git
from hypothesis import given
from hypothesis import strategies as st

from mirage.irmin import (
    GitBackend,
    Info,
    MemoryBackend,
    MergeConflict,
    PackBackend,
    PathError,
    RefPoller,
    RemoteError,
    RemoteStore,
    Repo,
    Store,
    StoreServer,
)
from mirage.irmin._http import HttpError, RequestReader

WAIT = 120.0  # generous: a loaded machine is slow, and nothing here is timed


class Served:
    """A :class:`StoreServer` on loopback, its event loop in a thread."""

    def __init__(self, repo: Repo, poll_interval: float = 0.05) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = StoreServer(repo, clock=lambda: 1_700_000_000, poll_interval=poll_interval)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        host, port = self.call(self.server.start("127.0.0.1", 0))
        self.url = f"http://{host}:{port}"

    def call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def close(self) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


@pytest.fixture(params=["memory", "git", "pack"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Repo:
    if request.param == "memory":
        return Repo(MemoryBackend())
    if request.param == "pack":
        return Repo(PackBackend(tmp_path / "r.pack"))
    return Repo(GitBackend.init(tmp_path / "r.git"))


@pytest.fixture
def served(repo: Repo) -> Iterator[Served]:
    s = Served(repo)
    try:
        yield s
    finally:
        s.close()


def at(t: int, message: str = "") -> Info:
    return Info(date=t, message=message or f"at {t}")


def test_remote_store_reads_and_writes(served: Served, repo: Repo) -> None:
    with RemoteStore(served.url) as r:
        assert r.head() is None and r.find("a/b") is None and r.list() == []
        h1 = r.set("a/b", b"one", at(1, "first"))
        r.set("a/c d", b"\x00two", at(2))
        r.set("top", b"3")  # dated by the server's clock
        assert r.get("a/b") == b"one" and r.get("a/c d") == b"\x00two"
        assert r.list() == [("a", "node"), ("top", "contents")]
        assert r.list("a") == [("b", "contents"), ("c d", "contents")]
        assert r.list("top") == [] and r.list("nothing") == []
        with pytest.raises(PathError):
            r.get("a/missing")
        h4 = r.remove("a", at(4))
        assert r.list() == [("top", "contents")] and r.head() == h4
        log = r.log()
        assert [e.date for e in log] == [4, 1_700_000_000, 2, 1]
        assert log[-1].id == h1 and log[-1].message == "first\n" and log[0].parents == (log[1].id,)
        assert [e.date for e in r.log(2)] == [4, 1_700_000_000]
        assert r.branches() == {"main": h4}
        with pytest.raises(PathError):
            r.set("a/../b", b"x")  # refused before sending, as a local store does
        assert r._request("PUT", "/contents/a/%2E%2E/b", body=b"x")[0] == 400
        assert r._request("PUT", "/contents/", body=b"x")[0] == 400
        assert r._request("POST", "/contents/a")[0] == 405
        assert r._request("POST", "/log")[0] == 405
        assert r._request("HEAD", "/contents/top") == (200, b"")  # headers only
        assert r.get("top") == b"3"  # the connection is still in step
    local = Store(repo)
    assert local.head() == h4 and local.get("top") == b"3"


def test_remote_merge_and_conflicts(served: Served, repo: Repo) -> None:
    main = Store(repo)
    main.set("n", b"1", at(1))
    main.clone("dev").set("n", b"5", at(2))
    main.set("n", b"3", at(3))
    with RemoteStore(served.url) as r:
        with pytest.raises(MergeConflict) as e:
            r.merge_with_branch("dev", at(4))
        (c,) = e.value.conflicts
        assert c.path == "n" and c.base and c.ours and c.theirs
        assert repo.read_blob(c.ours[1]) == b"3" and repo.read_blob(c.theirs[1]) == b"5"
        head = r.merge_with_branch("dev", at(4, "counted"), strategy="counter")
        assert r.get("n") == b"7" and head == main.head()
        with RemoteStore(served.url, branch="dev") as d:
            assert d.get("n") == b"5"
            d.set("extra", b"x", at(5))
        r.merge_with_branch("dev", at(6))
        assert r.get("extra") == b"x"
        with pytest.raises(RemoteError) as e2:
            r.merge_with_branch("nobranch", at(7))
        assert e2.value.status == 400
        with pytest.raises(RemoteError):
            r.merge_with_branch("dev", at(7), strategy="nonsense")


def test_long_poll_watch_sees_writes(served: Served, repo: Repo) -> None:
    store = Store(repo)
    store.set("k", b"0", at(1))
    with RemoteStore(served.url) as r:
        start = r.head()
        assert r.wait(start, timeout=0.0) == start  # nothing moved: the timeout answers
        seen: list[tuple[bytes | None, bytes | None]] = []
        ready = threading.Event()
        h3: bytes | None = b"not yet"

        def watcher() -> None:
            with RemoteStore(served.url) as w:
                ready.set()
                w.watch(lambda old, new: seen.append((old, new)) or new == h3, since=start)

        t = threading.Thread(target=watcher)
        t.start()
        ready.wait(WAIT)
        h2 = r.set("k", b"1", at(2))  # through the server
        t.join(0.2)
        h3 = store.set("k", b"2", at(3))  # beside it, found by polling
        t.join(WAIT)
        assert not t.is_alive()
        assert seen[0][0] == start and seen[-1][1] == h3 and len(seen) <= 2
        assert all(a[1] == b[0] for a, b in itertools.pairwise(seen))
        assert {new for _, new in seen} <= {h2, h3}


@needs_git
def test_ref_poller_notices_git(tmp_path: Path) -> None:
    repo = Repo(GitBackend.init(tmp_path / "r.git"))
    store = Store(repo)
    first = store.set("a", b"1", at(1))
    seen: list[tuple[bytes | None, bytes | None]] = []
    keys: list[tuple[bytes | None, bytes | None]] = []
    store.watch(lambda old, new: seen.append((old, new)))
    store.watch_key("a", lambda old, new: keys.append((old, new)))
    poller = RefPoller(repo, interval=10.0, now=100.0)
    assert poller.get_timer() == 100.0
    assert poller.handle_timer(100.0) and seen == []
    # another process (git itself) moves the branch
    tree = git("mktree", cwd=tmp_path / "r.git", input=b"").strip()
    other = git(
        "commit-tree", tree.decode(), "-p", first.hex(), "-m", "by git", cwd=tmp_path / "r.git"
    )
    git("update-ref", "refs/heads/main", other.strip().decode(), cwd=tmp_path / "r.git")
    assert not poller.handle_timer(105.0) and seen == []  # not due yet
    assert poller.handle_timer(110.0)
    new = bytes.fromhex(other.strip().decode())
    assert seen == [(first, new)]
    assert keys and keys[0][1] is None  # "a" is gone in git's empty tree
    git("pack-refs", "--all", cwd=tmp_path / "r.git")  # same value, now in packed-refs
    assert poller.handle_timer(120.0) and seen == [(first, new)]
    with pytest.raises(ValueError):
        RefPoller(repo, interval=0)


@given(st.binary(max_size=300), st.integers(1, 50))
def test_request_reader_is_total(data: bytes, step: int) -> None:
    reader = RequestReader()
    try:
        for i in range(0, len(data), step):
            for request in reader.feed(data[i : i + step]):
                assert request.method in {"GET", "HEAD", "PUT", "POST", "DELETE"}
                assert request.path.startswith("/")
    except HttpError as e:
        assert 400 <= e.status < 600


@given(st.lists(st.tuples(st.sampled_from(["GET", "PUT"]), st.binary(max_size=40)), max_size=5))
def test_request_reader_splits_pipelined_requests(items: list[tuple[str, bytes]]) -> None:
    wire = b"".join(
        f"{m} /contents/x%20y?branch=main HTTP/1.1\r\nHost: h\r\n".encode()
        + f"Content-Length: {len(b)}\r\n\r\n".encode()
        + b
        for m, b in items
    )
    got = []
    reader = RequestReader()
    for i in range(len(wire)):
        got += reader.feed(wire[i : i + 1])
    assert [(r.method, r.body) for r in got] == items
    assert all(r.path == "/contents/x y" and r.query == {"branch": "main"} for r in got)


def test_bad_requests_get_an_answer(served: Served) -> None:
    import socket

    host, port = served.url.removeprefix("http://").split(":")
    for raw, status in [
        (b"BREW /pot HTTP/1.1\r\n\r\n", b"501"),
        (b"GET /x HTTP/2.0\r\n\r\n", b"505"),
        (b"GET /x HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
        (b"GET nothing\r\n\r\n", b"400"),
        (b"GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n", b"404"),
    ]:
        with socket.create_connection((host, int(port)), timeout=WAIT) as s:
            s.sendall(raw)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        assert answer.split(b" ")[1] == status, raw


def _start(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**GIT_ENV, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mirage.irmin._cli", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@needs_git
def test_watch_and_serve_commands(tmp_path: Path) -> None:
    root = tmp_path / "r.git"
    store = Store(Repo(GitBackend.init(root)))
    first = store.set("k", b"1", at(1))
    watch = _start("-C", str(root), "watch", "--interval", "0.05", "--count", "2", cwd=tmp_path)
    serve = _start("-C", str(root), "serve", "--port", "0", "--poll", "0.05", cwd=tmp_path)
    try:
        assert watch.stdout is not None and serve.stdout is not None
        assert watch.stdout.readline() == "watching\n"
        line = serve.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line
        with RemoteStore(line.split()[1]) as r:
            assert r.get("k") == b"1"
            second = r.set("k", b"2", at(2))
            assert second is not None and first is not None
            assert r.wait(first, timeout=WAIT) == second
            assert git("show", "main:k", cwd=root) == b"2"
            assert watch.stdout.readline() == f"{first.hex()} {second.hex()}\n"
            # git moves the branch back: the watcher and the server both notice
            git("update-ref", "refs/heads/main", first.hex(), cwd=root)
            assert r.wait(second, timeout=WAIT) == first
            assert watch.stdout.readline() == f"{second.hex()} {first.hex()}\n"
        _, err = watch.communicate(timeout=WAIT)
        assert watch.returncode == 0, err
    finally:
        for p in (watch, serve):
            if p.poll() is None:
                p.terminate()
                p.communicate(timeout=WAIT)
    git("fsck", "--strict", cwd=root)
    assert os.path.isdir(root)
