"""The asyncio server on the host's sockets, against raw sockets, h11, httpx and curl."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import h11
import httpx
import pytest
from conftest import StartServer, echo, exchange, status_of
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.http import Limits, Request, Response, ServerConfig, asgi_handler


def test_keep_alive_with_httpx(start_server: StartServer) -> None:
    clients: set[tuple[str, int] | None] = set()

    async def handler(request: Request) -> Response:
        clients.add(request.client)
        return await echo(request)

    port, _ = start_server(handler)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(5):
            r = client.post(f"/p{i}", content=b"x" * i)
            assert r.status_code == 200
            assert r.text == f"POST /p{i} {i}\n" + "x" * i
    assert len(clients) == 1  # one connection carried all five


def test_pipelining_answers_in_order(start_server: StartServer) -> None:
    port, _ = start_server(echo)
    requests = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(10))
    requests += b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    reply = exchange(port, requests, shut=False)
    bodies = [
        line for line in reply.replace(b"\r\n", b"\n").split(b"\n") if line.startswith(b"GET ")
    ]
    assert bodies == [b"GET /%d 0" % i for i in range(10)] + [b"GET /last 0"]


def test_h11_client_against_our_server(start_server: StartServer) -> None:
    port, _ = start_server(echo)
    conn = h11.Connection(h11.CLIENT)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for i in range(3):
            s.sendall(
                conn.send(
                    h11.Request(
                        method="PUT",
                        target=f"/{i}",
                        headers=[("Host", "a"), ("Transfer-Encoding", "chunked")],
                    )
                )
                + conn.send(h11.Data(data=b"abc"))
                + conn.send(h11.Data(data=b"de"))
                + conn.send(h11.EndOfMessage())
            )
            body = b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(s.recv(65536))
                elif isinstance(event, h11.Response):
                    assert event.status_code == 200
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert body == f"PUT /{i} 5\nabcde".encode()
            conn.start_next_cycle()


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    ],
)
def test_bad_requests_get_their_status_and_a_close(
    start_server: StartServer, payload: bytes, status: int
) -> None:
    port, _ = start_server(echo)
    reply = exchange(port, payload, shut=False)  # the server closes on its own
    assert status_of(reply) == status
    assert b"connection: close" in reply
    # The server is still fine for others.
    assert status_of(exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")) == 200


def test_chunked_body_too_large_is_413(start_server: StartServer) -> None:
    port, _ = start_server(echo, ServerConfig(limits=Limits(max_body_size=10)))
    payload = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    payload += b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
    assert status_of(exchange(port, payload, shut=False)) == 413


def test_slow_head_gets_408_and_idle_connection_is_closed(start_server: StartServer) -> None:
    port, _ = start_server(echo, ServerConfig(header_timeout=0.2, idle_timeout=0.2))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # and never the blank line
        data = s.recv(65536)
        assert status_of(data) == 408
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        assert s.recv(100) == b""  # idle: closed without a word


def test_a_slow_client_cannot_take_every_connection(start_server: StartServer) -> None:
    port, _ = start_server(echo, ServerConfig(max_connections=2, idle_timeout=30))
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    try:
        for s in held:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert status_of(s.recv(65536)) == 200
        reply = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", shut=False)
        assert status_of(reply) == 503
    finally:
        for s in held:
            s.close()


def test_one_client_gets_only_its_share(start_server: StartServer) -> None:
    config = ServerConfig(max_connections_per_client=3, idle_timeout=30)
    port, _ = start_server(echo, config)
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    try:
        for s in held:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert status_of(s.recv(65536)) == 200
        reply = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", shut=False)
        assert status_of(reply) == 503
    finally:
        for s in held:
            s.close()


def test_a_client_that_stops_reading_loses_its_connection(start_server: StartServer) -> None:
    big = b"x" * (32 << 20)

    async def handler(request: Request) -> Response:
        return Response(200, [], big)

    port, server = start_server(handler, ServerConfig(body_timeout=0.3))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        for _ in range(400):  # never read; wait for the server to give up on us
            if server.active == 0:
                break
            time.sleep(0.05)
        assert server.active == 0
    finally:
        s.close()


def test_handler_failure_is_500_and_harms_no_one(start_server: StartServer) -> None:
    async def handler(request: Request) -> Response:
        if request.path == "/boom":
            raise RuntimeError("boom")
        return Response.text("fine")

    port, _ = start_server(handler)
    assert status_of(exchange(port, b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")) == 500
    assert exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").endswith(b"fine")


def test_expect_100_continue_raw(start_server: StartServer) -> None:
    port, _ = start_server(echo)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"data")
        assert s.recv(65536).endswith(b"PUT / 4\ndata")


def test_unread_body_is_skipped_before_the_next_request(start_server: StartServer) -> None:
    async def handler(request: Request) -> Response:
        return Response.text(request.path)

    port, _ = start_server(handler)
    payload = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    payload += b"GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    reply = exchange(port, payload, shut=False)
    assert reply.count(b"HTTP/1.1 200") == 2 and reply.endswith(b"/b")


def test_streaming_response_and_request_body(start_server: StartServer) -> None:
    async def handler(request: Request) -> Response:
        sizes = [len(piece) async for piece in request.stream()]

        async def gen() -> AsyncIterator[bytes]:
            for i in range(5):
                await asyncio.sleep(0)
                yield b"piece %d;" % i
            yield f"sum={sum(sizes)}".encode()

        return Response(200, [("content-type", "text/plain")], gen(), trailers=[("x-done", "1")])

    port, _ = start_server(handler)

    def upload() -> object:
        yield b"a" * 1000
        yield b"b" * 1000

    with httpx.Client() as client:
        r = client.post(f"http://127.0.0.1:{port}/", content=upload())
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.text == "piece 0;piece 1;piece 2;piece 3;piece 4;sum=2000"


def test_asgi_application(start_server: StartServer) -> None:
    async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"text/plain"), (b"x-path", scope["path"].encode())],
            }
        )
        await send({"type": "http.response.body", "body": b"got ", "more_body": True})
        await send({"type": "http.response.body", "body": body})

    port, _ = start_server(asgi_handler(app))
    with httpx.Client() as client:
        r = client.post(f"http://127.0.0.1:{port}/a%20b?q=1", content=b"payload")
        assert (r.status_code, r.text, r.headers["x-path"]) == (201, "got payload", "/a b")
        r = client.get(f"http://127.0.0.1:{port}/again")
        assert r.text == "got "


def test_asgi_application_that_fails_is_500(start_server: StartServer) -> None:
    async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        raise ValueError("broken app")

    port, _ = start_server(asgi_handler(app))
    assert status_of(exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")) == 500


CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    assert CURL is not None
    return subprocess.run([CURL, "-sS", *args], capture_output=True, text=True, timeout=30)


@needs_curl
def test_curl_chunked_upload_100_continue_and_head(
    start_server: StartServer, tmp_path: Path
) -> None:
    port, _ = start_server(echo)
    url = f"http://127.0.0.1:{port}/up"
    big = tmp_path / "big"
    big.write_bytes(b"z" * 200_000)
    r = curl("-H", "Expect: 100-continue", "--data-binary", f"@{big}", "-v", url)
    assert r.returncode == 0, r.stderr
    assert "HTTP/1.1 100 Continue" in r.stderr
    assert r.stdout.startswith("POST /up 200000\n")
    r = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "hello", url)
    assert r.stdout == "POST /up 5\nhello"
    r = curl("-I", url)
    assert r.stdout.startswith("HTTP/1.1 200 OK") and "content-length" in r.stdout
    # Keep-alive: curl reuses the connection for several URLs.
    r = curl("-v", url, url, url)
    assert (
        r.stderr.count("Re-using existing connection") >= 2
        or r.stderr.count("Reusing existing") >= 2
    ), r.stderr


H2LOAD = shutil.which("h2load")


@pytest.mark.skipif(
    H2LOAD is None, reason="h2load is not installed (apt-get install nghttp2-client)"
)
def test_h2load_pipelining(start_server: StartServer) -> None:
    assert H2LOAD is not None

    async def handler(request: Request) -> Response:
        return Response.text("pipelined\n")

    port, _ = start_server(handler)
    out = subprocess.run(
        [H2LOAD, "--h1", "-n", "400", "-c", "4", "-m", "10", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "400 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=400), prefix=st.sampled_from([b"", b"GET / HTTP/1.1\r\n"]))
def test_nothing_a_client_sends_breaks_the_server(data: bytes, prefix: bytes) -> None:
    port = _FUZZ["port"]
    reply = exchange(port, prefix + data)
    if reply:
        assert reply.startswith(b"HTTP/1.1 ")
    # And the server still answers a good request.
    assert status_of(exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")) == 200


_FUZZ: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _fuzz_server(request: pytest.FixtureRequest, start_server: StartServer) -> None:
    if request.function.__name__ == "test_nothing_a_client_sends_breaks_the_server":
        _FUZZ["port"], _ = start_server(echo, ServerConfig(idle_timeout=2, header_timeout=2))
