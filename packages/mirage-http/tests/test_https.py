"""HTTPS over mirage-tls: our server (HTTP/1.1 and HTTP/2 chosen by ALPN) against
curl, httpx and Python's ssl; our client against our server and against uvicorn
serving TLS through Python's ssl."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import StartServer, echo
from https_pki import PkiFiles, make_pki

from mirage.http import (
    Client,
    ClientError,
    Request,
    Response,
    ServerConfig,
    tls_server_config,
)
from mirage.tls import TlsConfig

CURL = shutil.which("curl")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_config(pki: PkiFiles) -> TlsConfig:
    config = tls_server_config(pki.chain.read_bytes(), pki.key.read_bytes())
    assert isinstance(config, TlsConfig) and len(config.certificates) == 1
    return config


def trust(pki: PkiFiles) -> TlsConfig:
    from cryptography import x509

    return TlsConfig(trust_store=tuple(x509.load_pem_x509_certificates(pki.ca.read_bytes())))


async def versioned(request: Request) -> Response:
    body = await request.body()
    return Response.text(f"{request.http_version} {request.method} {request.target} {len(body)}")


@pytest.fixture
def https_port(start_server: StartServer, pki: PkiFiles) -> int:
    port, _ = start_server(versioned, ServerConfig(tls=tls_config(pki)))
    return port


def test_alpn_with_python_ssl(https_port: int, pki: PkiFiles) -> None:
    for offer, chosen in (
        (["h2", "http/1.1"], "h2"),
        (["http/1.1"], "http/1.1"),
        (None, None),
    ):
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        if offer is not None:
            ctx.set_alpn_protocols(offer)
        with (
            socket.create_connection(("127.0.0.1", https_port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as s,
        ):
            assert s.selected_alpn_protocol() == chosen
            assert s.version() == "TLSv1.3"
            if chosen != "h2":
                s.sendall(b"GET /x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                reply = b""
                while data := s.recv(65536):
                    reply += data
                assert reply.startswith(b"HTTP/1.1 200")
                assert reply.endswith(b"1.1 GET /x 0")


def test_httpx_http1(https_port: int, pki: PkiFiles) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(verify=ctx, base_url=f"https://localhost:{https_port}") as client:
        for i in range(3):
            r = client.post("/post", content=b"x" * (1000 * i))
            assert r.status_code == 200
            assert r.http_version == "HTTP/1.1"
            assert r.text == f"1.1 POST /post {1000 * i}"


@pytest.mark.skipif(importlib.util.find_spec("h2") is None, reason="h2 is not installed (pip)")
def test_httpx_http2_over_alpn(https_port: int, pki: PkiFiles) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(verify=ctx, http2=True, base_url=f"https://localhost:{https_port}") as client:
        r = client.get("/h2")
        assert r.http_version == "HTTP/2"
        assert r.text == "2 GET /h2 0"


def test_bad_handshake_does_not_stop_the_server(https_port: int, pki: PkiFiles) -> None:
    with socket.create_connection(("127.0.0.1", https_port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")  # plain HTTP to a TLS port
        s.shutdown(socket.SHUT_WR)
        got = b""
        while data := s.recv(65536):
            got += data
        assert not got.startswith(b"HTTP/")  # an alert at most
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(verify=ctx) as client:
        assert client.get(f"https://127.0.0.1:{https_port}/after").status_code == 200


@pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")
@pytest.mark.parametrize(("flag", "version"), [("--http1.1", "1.1"), ("--http2", "2")])
def test_curl(https_port: int, pki: PkiFiles, flag: str, version: str) -> None:
    assert CURL is not None
    out = subprocess.run(
        [
            CURL,
            "-sS",
            "-i",
            flag,
            "--cacert",
            str(pki.ca),
            "--data-binary",
            "hello",
            f"https://localhost:{https_port}/curl",
        ],
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/%s 200" % version.encode())
    assert body == f"{version} POST /curl 5".encode()


@pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")
def test_curl_refuses_an_unknown_root(https_port: int) -> None:
    assert CURL is not None
    out = subprocess.run(
        [CURL, "-sS", f"https://localhost:{https_port}/"], capture_output=True, timeout=30
    )
    assert out.returncode == 60  # peer certificate cannot be authenticated


def test_our_client_with_our_server(https_port: int, pki: PkiFiles) -> None:
    async def go() -> None:
        from mirage.unix.stack import SocketStack

        stack = await SocketStack.connect(ipv4="127.0.0.1")
        async with Client(stack.tcp, timeout=10, tls=trust(pki)) as client:
            for i in range(3):
                r = await client.request("PUT", f"https://localhost:{https_port}/c", body=b"y" * i)
                assert (r.status, r.body) == (200, f"1.1 PUT /c {i}".encode())
            assert client.connections_opened == 1
        async with Client(stack.tcp, timeout=10) as client:  # the host's roots only
            with pytest.raises(ClientError, match="TLS"):
                await client.get(f"https://localhost:{https_port}/")
        await stack.disconnect()

    asyncio.run(go())


def test_our_client_with_echo_server_over_tls(start_server: StartServer, pki: PkiFiles) -> None:
    port, _ = start_server(echo, ServerConfig(tls=tls_config(pki)))

    async def go() -> None:
        from mirage.unix.stack import SocketStack

        stack = await SocketStack.connect(ipv4="127.0.0.1")
        async with Client(stack.tcp, timeout=10, tls=trust(pki)) as client:
            r = await client.request("POST", f"https://127.0.0.1:{port}/e", body=b"z" * 100_000)
            assert r.status == 200 and r.body.endswith(b"z" * 100_000)
        await stack.disconnect()

    asyncio.run(go())


APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    reply = b"%s %s" % (scope["scheme"].encode(), scope["path"].encode())
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(reply))]})
    await send({"type": "http.response.body", "body": reply})
"""


@pytest.fixture(scope="module")
def uvicorn_tls(tmp_path_factory: pytest.TempPathFactory, pki: PkiFiles) -> Iterator[int]:
    if importlib.util.find_spec("uvicorn") is None:
        pytest.skip("uvicorn is not installed (pip)")
    directory = tmp_path_factory.mktemp("tlsapp")
    (directory / "tlsapp.py").write_text(textwrap.dedent(APP))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tlsapp:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--ssl-certfile",
            str(pki.chain),
            "--ssl-keyfile",
            str(pki.key),
        ],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("uvicorn did not start")
        yield port
    finally:
        child.kill()
        child.wait(30)


def test_our_client_with_uvicorn_over_python_ssl(uvicorn_tls: int, pki: PkiFiles) -> None:
    async def go() -> None:
        from mirage.unix.stack import SocketStack

        stack = await SocketStack.connect(ipv4="127.0.0.1")
        async with Client(stack.tcp, timeout=10, tls=trust(pki)) as client:
            for _ in range(2):
                r = await client.get(f"https://localhost:{uvicorn_tls}/hello")
                assert (r.status, r.body) == (200, b"https /hello")
            assert client.connections_opened == 1
        await stack.disconnect()

    asyncio.run(go())


def test_a_stalled_handshake_is_dropped(start_server: StartServer, pki: PkiFiles) -> None:
    port, _ = start_server(versioned, ServerConfig(tls=tls_config(pki), header_timeout=0.3))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        assert s.recv(1) == b""  # closed by the server, nothing sent
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(verify=ctx) as client:
        assert client.get(f"https://localhost:{port}/").status_code == 200
