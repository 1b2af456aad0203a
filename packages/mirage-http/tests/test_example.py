"""examples/static-website built with the real ``mirage`` command, fetched with curl
and httpx, over HTTP and (given a certificate at run time) over HTTPS."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from https_pki import make_pki

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


def run(directory: Path, *args: str) -> Iterator[str]:
    """``mirage run --port P [args]``; yields the URL the unikernel prints (both
    URLs, separated by a space, when ``args`` turn HTTPS on)."""
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mirage.core",
            "-C",
            str(directory),
            "run",
            "--port",
            str(port),
            *args,
        ],
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
        if not args:
            yield f"http://127.0.0.1:{port}/"
            return
        tls_port = args[args.index("--tls-port") + 1]
        line = child.stdout.readline()
        assert line == f"static-website: serving on https://localhost:{tls_port}/\n", line
        yield f"http://127.0.0.1:{port}/ https://localhost:{tls_port}/"
    finally:
        child.terminate()
        child.communicate(timeout=30)
    assert child.returncode == 0


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = build(tmp_path_factory.mktemp("crunch"))  # crunch: the example's default
    shutil.rmtree(directory / "htdocs")  # the artifact carries its files
    return directory


@pytest.fixture(scope="module")
def crunched(built: Path) -> Iterator[str]:
    yield from run(built)


@pytest.fixture(scope="module")
def https(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """The same artifact with ``--tls-cert``/``--tls-key``: (https URL, CA file,
    http URL)."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    args = ("--tls-port", str(free_port()), "--tls-cert", str(pki.chain), "--tls-key", str(pki.key))
    for urls in run(built, *args):
        plain, secure = urls.split()
        yield secure, pki.ca, plain


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


def test_https_with_httpx(https: tuple[str, Path, str]) -> None:
    url, ca, _ = https
    index = (EXAMPLE / "htdocs" / "index.html").read_bytes()
    ctx = ssl.create_default_context(cafile=str(ca))
    for http2 in (False, True):
        with httpx.Client(base_url=url, verify=ctx, http2=http2) as client:
            r = client.get("/")
            assert (r.status_code, r.content) == (200, index)
            assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert client.get("/robots.txt", headers={"range": "bytes=0-9"}).text == "User-agent"


@pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")
@pytest.mark.parametrize(
    ("flag", "status"), [("--http1.1", b"HTTP/1.1 200"), ("--http2", b"HTTP/2 200")]
)
def test_https_with_curl(https: tuple[str, Path, str], flag: str, status: bytes) -> None:
    assert CURL is not None
    url, ca, _ = https
    out = subprocess.run(
        [CURL, "-sS", "-i", flag, "--cacert", str(ca), url + "robots.txt"],
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(status)
    assert body == (EXAMPLE / "htdocs" / "robots.txt").read_bytes()


def test_plain_http_still_served_beside_https(https: tuple[str, Path, str]) -> None:
    assert httpx.get(https[2] + "robots.txt").status_code == 200
