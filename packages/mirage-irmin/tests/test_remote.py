"""The pack protocol against git's own servers: ``upload-pack``/``receive-pack`` on a
local path, and ``git daemon`` on the loopback interface."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GIT, GIT_ENV, git, needs_git
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.irmin import (
    DecodeError,
    GitBackend,
    Info,
    MemoryBackend,
    NotFastForward,
    Repo,
    Store,
    fetch_remote,
    push_remote,
)
from mirage.irmin._wire import (
    parse_advertisement,
    parse_report,
    read_pkt_lines,
    split_fetch_response,
)


@given(st.binary(max_size=120))
@settings(max_examples=200)
def test_wire_parsers_are_total(data: bytes) -> None:
    for parse in (
        lambda d: parse_advertisement(read_pkt_lines(d)[0]),
        split_fetch_response,
        parse_report,
    ):
        try:
            parse(data)
        except DecodeError:
            pass


def at(t: int) -> Info:
    return Info(date=1_700_000_000 + t, message=f"ours {t}")


def git_repo(path: Path, commits: int = 6) -> Path:
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    for i in range(commits):
        (path / f"f{i % 3}").write_text(f"{i}\n" * 40)
        git("add", "-A", cwd=path)
        git("commit", "-q", "-m", f"git {i}", cwd=path)
    git("gc", "-q", cwd=path)
    return path


@needs_git
@pytest.mark.parametrize("backend", ["git", "memory"])
def test_fetch_and_push_over_local_transport(tmp_path: Path, backend: str) -> None:
    src = git_repo(tmp_path / "src")
    dst = GitBackend.init(tmp_path / "ours.git") if backend == "git" else MemoryBackend()
    got = fetch_remote(str(src), dst, {"refs/heads/main": "refs/heads/main"})
    assert got["refs/heads/main"].hex() == git("rev-parse", "main", cwd=src).decode().strip()
    store = Store(Repo(dst), "main")
    assert store.get("f0") == b"3\n" * 40
    store.set("new/file", b"from us\n", at(1))
    git("init", "-q", "--bare", "-b", "main", "bare.git", cwd=tmp_path)
    git("push", "-q", str(tmp_path / "bare.git"), "main", cwd=src)
    push_remote(dst, str(tmp_path / "bare.git"), "main")
    git("fsck", "--strict", cwd=tmp_path / "bare.git")
    assert git("show", "main:new/file", cwd=tmp_path / "bare.git") == b"from us\n"
    # Fetching again sends only what is new (a have is common).
    (src / "later").write_text("later\n")
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "later", cwd=src)
    fetch_remote(str(src), dst)
    assert dst.get_ref("refs/remotes/origin/main") is not None
    merged = store.merge_with_commit(dst.get_ref("refs/remotes/origin/main") or b"", at(2))
    assert merged is not None and store.get("later") == b"later\n"
    push_remote(dst, str(tmp_path / "bare.git"), "main")
    git("fsck", "--strict", cwd=tmp_path / "bare.git")
    assert git("log", "-1", "--format=%P", "main", cwd=tmp_path / "bare.git").count(b" ") == 1
    # A push that would lose the remote's history is refused.
    other = tmp_path / "other"
    git("clone", "-q", str(tmp_path / "bare.git"), str(other), cwd=tmp_path)
    git("commit", "-q", "--allow-empty", "-m", "theirs", cwd=other)
    git("push", "-q", "origin", "main", cwd=other)
    store.set("diverged", b"1", at(3))
    with pytest.raises(NotFastForward):
        push_remote(dst, str(tmp_path / "bare.git"), "main")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if GIT is None:
        pytest.skip("needs the git command (apt package git)")
    base = tmp_path / "served"
    base.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            GIT,
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        env=GIT_ENV,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.skip("git daemon (from the apt package git) did not start on 127.0.0.1")
        yield f"git://127.0.0.1:{port}", base
    finally:
        proc.terminate()
        proc.wait(10)


def test_fetch_and_push_with_git_daemon(daemon: tuple[str, Path], tmp_path: Path) -> None:
    url, base = daemon
    git_repo(tmp_path / "src")
    git("clone", "-q", "--bare", str(tmp_path / "src"), str(base / "r.git"), cwd=tmp_path)
    ours = MemoryBackend()
    got = fetch_remote(f"{url}/r.git", ours, {"refs/heads/main": "refs/heads/main"})
    store = Store(Repo(ours), "main")
    assert store.get("f1") == b"4\n" * 40 and got
    store.set("pushed", b"over git://\n", at(1))
    push_remote(ours, f"{url}/r.git", "main")
    git("fsck", "--strict", cwd=base / "r.git")
    assert git("show", "main:pushed", cwd=base / "r.git") == b"over git://\n"


@pytest.fixture
def http_backend(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``git http-backend`` behind a small CGI bridge on the loopback interface."""
    if GIT is None:
        pytest.skip("needs the git command (apt package git)")
    base = tmp_path / "http"
    base.mkdir()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.cgi()

        def do_POST(self) -> None:
            self.cgi()

        def cgi(self) -> None:
            assert GIT is not None
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            env = {
                **GIT_ENV,
                "GIT_PROJECT_ROOT": str(base),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REMOTE_USER": "tester",
                "REMOTE_ADDR": "127.0.0.1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(length),
            }
            if self.headers.get("Git-Protocol"):  # as a web server passes headers to CGI
                env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            out = subprocess.run(
                [GIT, "http-backend"], input=self.rfile.read(length), env=env, capture_output=True
            ).stdout
            head, _, body = out.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.split(b"\r\n"):
                key, _, value = line.decode().partition(": ")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers.append((key, value))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", base
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_and_push_over_smart_http(http_backend: tuple[str, Path], tmp_path: Path) -> None:
    url, base = http_backend
    git_repo(tmp_path / "src")
    git("clone", "-q", "--bare", str(tmp_path / "src"), str(base / "r.git"), cwd=tmp_path)
    ours = GitBackend.init(tmp_path / "ours.git")
    fetch_remote(f"{url}/r.git", ours, {"refs/heads/main": "refs/heads/main"})
    store = Store(Repo(ours), "main")
    assert store.get("f2") == b"5\n" * 40
    store.set("pushed", b"over smart HTTP\n", at(1))
    push_remote(ours, f"{url}/r.git", "main")
    git("fsck", "--strict", cwd=base / "r.git")
    assert git("show", "main:pushed", cwd=base / "r.git") == b"over smart HTTP\n"
    assert fetch_remote(f"{url}/r.git", ours, {"refs/heads/main": "refs/heads/main"})
