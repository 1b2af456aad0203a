"""Our client against a real uvicorn serving a tiny ASGI application."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirage.http import Client, ClientError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="uvicorn is not installed (pip)"
)

APP = """
import asyncio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/redirect":
        await send({"type": "http.response.start", "status": 302,
                    "headers": [(b"location", b"/final?from=redirect")]})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/loop":
        await send({"type": "http.response.start", "status": 307,
                    "headers": [(b"location", b"/loop")]})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/slow":
        await asyncio.sleep(5)
    if path == "/chunked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"part%d " % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"end"})
        return
    reply = b"%s %s %s %d" % (scope["method"].encode(), path.encode(),
                              scope["query_string"], len(body))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(reply))]})
    await send({"type": "http.response.body", "body": reply})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def uvicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("app")
    (directory / "tinyapp.py").write_text(textwrap.dedent(APP))
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tinyapp:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
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
        child.kill()  # no graceful wait for the request that sleeps
        child.wait(30)


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def client_for(port: int) -> tuple[Client, str]:
    from mirage.unix.stack import SocketStack

    stack = await SocketStack.connect(ipv4="127.0.0.1")
    return Client(stack.tcp, timeout=10), f"http://127.0.0.1:{port}"


def test_reuses_one_connection(uvicorn: int) -> None:
    async def go() -> None:
        client, base = await client_for(uvicorn)
        async with client:
            for i in range(5):
                r = await client.request("POST", f"{base}/echo?i={i}", body=b"x" * i)
                assert (r.status, r.body) == (200, f"POST /echo i={i} {i}".encode())
            assert client.connections_opened == 1

    run(go())


def test_chunked_response(uvicorn: int) -> None:
    async def go() -> None:
        client, base = await client_for(uvicorn)
        async with client:
            r = await client.get(f"{base}/chunked")
            assert r.header("transfer-encoding") == "chunked"
            assert r.body == b"part0 part1 part2 part3 part4 end"
            r = await client.get(f"{base}/after")  # the same connection still works
            assert r.body == b"GET /after  0"
            assert client.connections_opened == 1

    run(go())


def test_redirects(uvicorn: int) -> None:
    async def go() -> None:
        client, base = await client_for(uvicorn)
        async with client:
            r = await client.request("POST", f"{base}/redirect", body=b"data")
            assert r.status == 200
            assert r.body == b"GET /final from=redirect 0"  # 302 after POST: GET
            assert r.redirects == (f"{base}/redirect",)
            r = await client.get(f"{base}/redirect", follow_redirects=False)
            assert (r.status, r.header("location")) == (302, "/final?from=redirect")
            with pytest.raises(ClientError, match="redirects"):
                await client.get(f"{base}/loop")

    run(go())


def test_timeout(uvicorn: int) -> None:
    async def go() -> None:
        client, base = await client_for(uvicorn)
        async with client:
            with pytest.raises(ClientError, match="timed out"):
                await client.get(f"{base}/slow", timeout=0.2)
            with pytest.raises(ClientError, match="only http:// and https://"):
                await client.get("ftp://127.0.0.1/")

    run(go())


def test_reconnects_after_the_server_closed_an_idle_connection(uvicorn: int) -> None:
    async def go() -> None:
        client, base = await client_for(uvicorn)
        async with client:
            await client.get(f"{base}/one")
            for conns in client._idle.values():
                for c in conns:  # the server side goes away while the connection idles
                    await c.flow.close()
                    c.reused = True
            r = await client.get(f"{base}/two")
            assert r.body == b"GET /two  0"

    run(go())


def test_against_our_own_server(tmp_path: Path) -> None:
    from mirage.http import Request, Response, Server
    from mirage.unix.stack import SocketStack

    async def go() -> None:
        stack = await SocketStack.connect(ipv4="127.0.0.1")

        async def handler(request: Request) -> Response:
            async def gen():  # type: ignore[no-untyped-def]
                yield b"a"
                yield b"b"

            return Response(200, [], gen(), trailers=[("x-t", "1")])

        await stack.tcp.listen(0, Server(handler).handle)
        port = stack.tcp.listening_port(0)
        async with Client(stack.tcp) as client:
            r = await client.get(f"http://127.0.0.1:{port}/")
            assert (r.body, r.trailers) == (b"ab", (("x-t", "1"),))
        await stack.disconnect()

    run(go())
