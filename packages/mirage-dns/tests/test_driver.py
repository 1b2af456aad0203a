"""The asyncio driver over a real Stack (mirage-unix's sockets): TCP details."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from conftest import ZONE

from mirage.dns import Authority, Name, Zone, make_query, pull_message, push_message, read_zone
from mirage.dns.server import DnsServer, load_zones

T = TypeVar("T")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _with_server(body: Callable[[int], Awaitable[T]], idle: float = 10.0) -> T:
    from mirage.unix.stack import SocketStack

    port = _port()
    stack = await SocketStack.connect(ipv4="127.0.0.1")
    server = DnsServer(stack, Authority([Zone.from_records(read_zone(ZONE))]), port,
                       idle_timeout=idle)  # fmt: skip
    await server.start()
    try:
        return await body(port)
    finally:
        await server.stop()
        await stack.disconnect()


def test_idle_tcp_connections_are_closed() -> None:
    async def body(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()

    assert asyncio.run(_with_server(body, idle=0.2)) == b""


def test_partial_frames_and_garbage_over_tcp() -> None:
    query = push_message(make_query(Name.from_text("www.example.com."), 1, ident=77))
    frame = len(query).to_bytes(2, "big") + query

    async def body(port: int) -> list[int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame[:3])  # a frame split across writes
        await writer.drain()
        await asyncio.sleep(0.05)
        garbage = b"\x12\x34\x01\x00\x00\x01"  # shorter than a header: dropped
        writer.write(frame[3:] + len(garbage).to_bytes(2, "big") + garbage)
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        ids = [pull_message(await reader.readexactly(size)).id]
        writer.write(frame)  # the connection still serves after the junk
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        ids.append(pull_message(await reader.readexactly(size)).id)
        writer.close()
        return ids

    assert asyncio.run(_with_server(body)) == [77, 77]


def test_load_zones_reads_files() -> None:
    (zone,) = load_zones([ZONE])
    assert zone.origin == Name.from_text("example.com.")
