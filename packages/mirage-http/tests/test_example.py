"""examples/static-website built with the real ``mirage`` command, fetched with curl
and httpx."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "static-website"


def mirage(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirage.core", "-C", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(tmp_path: Path, *keys: str) -> Path:
    directory = tmp_path / "static-website"
    shutil.copytree(
        EXAMPLE, directory, ignore=shutil.ignore_patterns("mirage", "dist", "__pycache__")
    )
    result = mirage(directory, "configure", "-t", "unix", *keys)
    assert result.returncode == 0, result.stderr
    result = mirage(directory, "build")
    assert result.returncode == 0, result.stderr
    return directory


def run(directory: Path) -> Iterator[str]:
    """``mirage run --port P``; yields the URL the unikernel prints."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "mirage.core", "-C", str(directory), "run", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == f"static-website: serving on http://localhost:{port}/\n", (
            line + child.stderr.read() if child.stderr else line
        )
        yield f"http://127.0.0.1:{port}/"
    finally:
        child.terminate()
        child.communicate(timeout=30)
    assert child.returncode == 0


@pytest.fixture(scope="module")
def crunched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = build(tmp_path_factory.mktemp("crunch"))  # crunch: the example's default
    shutil.rmtree(directory / "htdocs")  # the artifact carries its files
    yield from run(directory)


def test_pages_with_httpx(crunched: str) -> None:
    index = (EXAMPLE / "htdocs" / "index.html").read_bytes()
    with httpx.Client(base_url=crunched) as client:
        r = client.get("/")
        assert r.status_code == 200
        assert r.content == index
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert client.get("/css/site.css").headers["content-type"] == "text/css; charset=utf-8"
        r2 = client.get("/", headers={"if-none-match": r.headers["etag"]})
        assert r2.status_code == 304
        assert client.get("/docs", follow_redirects=True).url.path == "/docs/"
        assert client.get("/robots.txt", headers={"range": "bytes=0-9"}).text == "User-agent"
        assert client.get("/nothing-here").status_code == 404
        assert client.get("/../config.py").status_code == 404


CURL = shutil.which("curl")


@pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")
def test_pages_with_curl(crunched: str) -> None:
    assert CURL is not None
    out = subprocess.run(
        [CURL, "-sS", "-i", crunched + "robots.txt"], capture_output=True, timeout=30
    )
    assert out.returncode == 0
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"content-type: text/plain; charset=utf-8" in head
    assert body == (EXAMPLE / "htdocs" / "robots.txt").read_bytes()
    out = subprocess.run(
        [
            CURL,
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--path-as-is",
            crunched + "../../etc/passwd",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout == "404"
    # The artifact also speaks h2c to clients that open with the HTTP/2 preface.
    out = subprocess.run(
        [CURL, "-sS", "--http2-prior-knowledge", "-i", crunched], capture_output=True, timeout=30
    )
    assert out.stdout.startswith(b"HTTP/2 200")


def test_directory_store_sees_new_files(tmp_path: Path) -> None:
    directory = build(tmp_path, "--kv-ro", "directory")  # read at run time
    (directory / "htdocs" / "late.txt").write_text("added after the build\n")
    for url in run(directory):
        assert httpx.get(url + "late.txt").text == "added after the build\n"
