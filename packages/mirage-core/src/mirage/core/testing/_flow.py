"""Conformance tests of flows, and helpers to read from one.

The contract beyond :class:`~mirage.core.types.Flow`: bytes arrive in order and
intact, however the writer split them; after the writer's ``shutdown`` (or
``close``) the reader gets what was sent, then ``b""`` on every read; the other
direction keeps working after a ``shutdown``; a flow raises :class:`FlowClosed` on
``write`` after its own ``shutdown`` or ``close``; ``close`` may be called twice.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from mirage.core.types import Flow, FlowClosed

from ._run import AsyncTests, async_test

__all__ = ["FlowTests", "read_exactly", "read_to_eof"]

MIB = 1 << 20


async def read_exactly(flow: Flow, n: int) -> bytes:
    """Read until ``n`` bytes have arrived; fails if the flow ends first."""
    buf = bytearray()
    while len(buf) < n:
        data = await flow.read()
        assert data, f"the flow ended after {len(buf)} of {n} bytes"
        buf += data
    assert len(buf) == n, f"expected {n} bytes, got {len(buf)}"
    return bytes(buf)


async def read_to_eof(flow: Flow) -> bytes:
    """Everything up to the end of the stream (``b""``)."""
    buf = bytearray()
    while data := await flow.read():
        buf += data
    return bytes(buf)


def noise(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


async def send_all(flow: Flow, data: bytes, chunk: int = 65536) -> None:
    for i in range(0, len(data), chunk):
        await flow.write(data[i : i + chunk])
    await flow.shutdown()


class FlowTests(AsyncTests):
    """Subclass and implement :meth:`make_flow_pair` to check a flow."""

    async def make_flow_pair(self) -> tuple[Flow, Flow]:
        """Two connected ends: what one writes, the other reads. Fresh each call."""
        raise NotImplementedError

    @asynccontextmanager
    async def flow_pair(self) -> AsyncIterator[tuple[Flow, Flow]]:
        a, b = await self.make_flow_pair()
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()

    @async_test
    async def test_write_read(self) -> None:
        async with self.flow_pair() as (a, b):
            await a.write(b"hello")
            assert await read_exactly(b, 5) == b"hello"
            await b.write(b"world!")
            assert await read_exactly(a, 6) == b"world!"

    @async_test
    async def test_writev(self) -> None:
        async with self.flow_pair() as (a, b):
            await a.writev([b"ab", b"", b"cd", b"e"])
            assert await read_exactly(b, 5) == b"abcde"
            await a.writev([])
            await a.write(b"f")
            assert await read_exactly(b, 1) == b"f"

    @async_test
    async def test_many_small_writes(self) -> None:
        async with self.flow_pair() as (a, b):
            data = noise(1, 5000)
            for i in range(0, len(data), 7):
                await a.write(data[i : i + 7])
            assert await read_exactly(b, len(data)) == data

    @async_test
    async def test_large_transfer_both_ways(self) -> None:
        there, back = noise(2, MIB), noise(3, MIB)
        async with self.flow_pair() as (a, b):
            _, _, got_back, got_there = await asyncio.gather(
                send_all(a, there), send_all(b, back), read_to_eof(a), read_to_eof(b)
            )
            assert len(got_there) == MIB
            assert got_there == there
            assert len(got_back) == MIB
            assert got_back == back

    @async_test
    async def test_shutdown(self) -> None:
        async with self.flow_pair() as (a, b):
            await a.write(b"last words")
            await a.shutdown()
            assert await read_to_eof(b) == b"last words"
            assert await b.read() == b""
            await b.write(b"reply")
            assert await read_exactly(a, 5) == b"reply"
            await b.shutdown()
            assert await read_to_eof(a) == b""

    @async_test
    async def test_close_ends_the_peer(self) -> None:
        async with self.flow_pair() as (a, b):
            await a.write(b"bye")
            await a.close()
            assert await read_to_eof(b) == b"bye"

    @async_test
    async def test_write_after_shutdown(self) -> None:
        async with self.flow_pair() as (a, _):
            await a.shutdown()
            with pytest.raises(FlowClosed):
                await a.write(b"too late")

    @async_test
    async def test_write_after_close(self) -> None:
        async with self.flow_pair() as (a, _):
            await a.close()
            with pytest.raises(FlowClosed):
                await a.write(b"too late")
            with pytest.raises(FlowClosed):
                await a.writev([b"too", b"late"])
            await a.close()
