"""Conformance tests of network stacks, over the stack's own loopback.

A stack connects to itself at :meth:`StackTests.peer_address` (``"127.0.0.1"`` for
a host-socket stack, its configured address for a direct stack): a TCP listener and
its clients, and UDP listeners answering each other, all within one stack.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mirage.core.types import Flow, Stack

from ._flow import noise, read_exactly, read_to_eof
from ._run import AsyncTests, async_test, disconnect

__all__ = ["StackTests"]


async def echo(flow: Flow) -> None:
    """A TCP handler: send back everything, then close."""
    try:
        while data := await flow.read():
            await flow.write(data)
    finally:
        await flow.close()


class StackTests(AsyncTests):
    """Subclass and implement :meth:`make_stack` and :meth:`peer_address`."""

    connect_timeout: float = 5.0
    """How long a connection to a port nobody listens on may take to fail."""

    async def make_stack(self) -> Stack:
        """A connected stack; a fresh one each call."""
        raise NotImplementedError

    def peer_address(self) -> str:
        """An address of the stack that it can reach itself on."""
        raise NotImplementedError

    def free_port(self, kind: str = "tcp") -> int:
        """A port nobody listens on (``kind`` is ``"tcp"`` or ``"udp"``).

        By default a port the host's loopback has free; a stack that does not share
        the host's ports may return any port.
        """
        family = socket.AF_INET6 if ":" in self.peer_address() else socket.AF_INET
        sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
        with socket.socket(family, sock_type) as sock:
            sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
            return int(sock.getsockname()[1])

    @asynccontextmanager
    async def stack(self) -> AsyncIterator[Stack]:
        stack = await self.make_stack()
        try:
            yield stack
        finally:
            await disconnect(stack)

    @async_test
    async def test_tcp_echo(self) -> None:
        port = self.free_port()
        async with self.stack() as stack:
            await stack.tcp.listen(port, echo)
            try:
                flow = await stack.tcp.connect(self.peer_address(), port)
                try:
                    await flow.write(b"hello, ")
                    assert await read_exactly(flow, 7) == b"hello, "
                    data = noise(4, 100_000)
                    await flow.write(data)
                    await flow.shutdown()
                    assert await read_to_eof(flow) == data
                finally:
                    await flow.close()
            finally:
                await stack.tcp.unlisten(port)

    @async_test
    async def test_tcp_concurrent_clients(self) -> None:
        port = self.free_port()

        async def client(stack: Stack, n: int) -> bytes:
            flow = await stack.tcp.connect(self.peer_address(), port)
            try:
                await flow.write(noise(n, 10_000))
                await flow.shutdown()
                return await read_to_eof(flow)
            finally:
                await flow.close()

        async with self.stack() as stack:
            await stack.tcp.listen(port, echo)
            try:
                got = await asyncio.gather(*(client(stack, n) for n in range(4)))
                assert got == [noise(n, 10_000) for n in range(4)]
            finally:
                await stack.tcp.unlisten(port)

    @async_test
    async def test_tcp_unlisten(self) -> None:
        port = self.free_port()
        async with self.stack() as stack:
            await stack.tcp.listen(port, echo)
            await stack.tcp.unlisten(port)
            try:
                flow = await asyncio.wait_for(
                    stack.tcp.connect(self.peer_address(), port), self.connect_timeout
                )
            except Exception:
                return  # refused (or never answered): what unlisten should give
            await flow.close()
            raise AssertionError(f"connected to port {port} after unlisten")

    @async_test
    async def test_udp_round_trip(self) -> None:
        ping_port, pong_port = self.free_port("udp"), self.free_port("udp")
        address = self.peer_address()
        replies: asyncio.Queue[tuple[str, int, bytes]] = asyncio.Queue()
        async with self.stack() as stack:

            async def answer(src: str, src_port: int, payload: bytes) -> None:
                await stack.udp.write(src, src_port, b"pong:" + payload, src_port=ping_port)

            async def collect(src: str, src_port: int, payload: bytes) -> None:
                await replies.put((src, src_port, payload))

            await stack.udp.listen(ping_port, answer)
            await stack.udp.listen(pong_port, collect)
            try:
                await stack.udp.write(address, ping_port, b"ping", src_port=pong_port)
                _, src_port, payload = await replies.get()
                assert (src_port, payload) == (ping_port, b"pong:ping")
            finally:
                await stack.udp.unlisten(ping_port)
                await stack.udp.unlisten(pong_port)
