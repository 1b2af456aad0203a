"""Against the standard library's HTTP: http.client as our server's client, and our
client against http.server."""

from __future__ import annotations

import asyncio
import http.client
import http.server
import threading
from collections.abc import Iterator

import pytest
from conftest import StartServer, echo

from mirage.http import Client


def test_http_client_keep_alive_and_chunked_upload(start_server: StartServer) -> None:
    port, _ = start_server(echo)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(3):
            conn.request("GET", f"/{i}")
            r = conn.getresponse()
            assert (r.status, r.read()) == (200, f"GET /{i} 0\n".encode())
        conn.request("POST", "/c", body=iter([b"ab", b"cd"]), encode_chunked=True)
        r = conn.getresponse()
        assert r.read() == b"POST /c 4\nabcd"
        conn.request("HEAD", "/h")
        r = conn.getresponse()
        assert (r.status, r.read(), r.getheader("content-length")) == (
            200,
            b"",
            "10",
        )  # "HEAD /h 0\n"
    finally:
        conn.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"stdlib {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stdlib_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_our_client_against_http_server(stdlib_server: int) -> None:
    from mirage.unix.stack import SocketStack

    async def go() -> None:
        stack = await SocketStack.connect(ipv4="127.0.0.1")
        async with Client(stack.tcp, timeout=10) as client:
            for path in ("/a", "/b?c=d"):
                r = await client.get(f"http://127.0.0.1:{stdlib_server}{path}")
                assert (r.status, r.body) == (200, f"stdlib {path}".encode())
            assert client.connections_opened == 1

    asyncio.run(go())
