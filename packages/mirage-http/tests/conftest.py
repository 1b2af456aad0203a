"""Shared helpers: a server on the host's sockets in a background event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from mirage.http import Handler, Request, Response, Server, ServerConfig


class Background:
    """An asyncio loop in a thread, for servers that blocking test clients talk to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def background() -> Iterator[Background]:
    bg = Background()
    yield bg
    bg.stop()


StartServer = Callable[..., tuple[int, Server]]


@pytest.fixture
def start_server(background: Background) -> Iterator[StartServer]:
    from mirage.unix.stack import SocketStack

    stacks: list[SocketStack] = []

    def start(handler: Handler, config: ServerConfig | None = None) -> tuple[int, Server]:
        async def go() -> tuple[int, Server]:
            stack = await SocketStack.connect(ipv4="127.0.0.1")
            stacks.append(stack)
            server = Server(handler, config)
            await stack.tcp.listen(0, server.handle)
            return stack.tcp.listening_port(0), server

        result: tuple[int, Server] = background.run(go())
        return result

    yield start
    for stack in stacks:
        background.run(stack.disconnect())


async def echo(request: Request) -> Response:
    """Answers with the method, target, and the body it read."""
    body = await request.body()
    return Response(
        200,
        [("content-type", "text/plain"), ("x-method", request.method)],
        f"{request.method} {request.target} {len(body)}\n".encode() + body,
    )


def exchange(port: int, data: bytes, *, shut: bool = True, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
        return bytes(out)


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])
