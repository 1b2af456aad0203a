"""A small conformance base for Network implementations of this package."""

from __future__ import annotations

import asyncio
import contextlib

from mirage.core.testing import AsyncTests, async_test
from mirage.core.types import Network


def frame(dst: bytes, src: bytes, payload: bytes, ethertype: int = 0x88B5) -> bytes:
    return dst + src + ethertype.to_bytes(2, "big") + payload


class Listening:
    """Collects the frames a network delivers, in a background task."""

    def __init__(self, network: Network) -> None:
        self.frames: asyncio.Queue[bytes] = asyncio.Queue()
        self.task = asyncio.ensure_future(network.listen(self.frames.put_nowait))

    async def next(self, *, ethertype: int = 0x88B5, timeout: float = 5.0) -> bytes:
        while True:
            got = await asyncio.wait_for(self.frames.get(), timeout)
            if got[12:14] == ethertype.to_bytes(2, "big"):
                return got

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class NetworkTests(AsyncTests):
    """Subclass and implement ``make_pair``: two interfaces on one link."""

    timeout = 20.0

    async def make_pair(self) -> tuple[Network, Network]:
        raise NotImplementedError

    @async_test
    async def test_frames_both_ways(self) -> None:
        a, b = await self.make_pair()
        la, lb = Listening(a), Listening(b)
        try:
            assert len(a.mac) == 6 and a.mtu >= 576
            sent = frame(b.mac, a.mac, b"hello" * 20)
            await a.write(sent)
            assert await lb.next() == sent
            back = frame(a.mac, b.mac, bytes(range(256)) * 5)
            await b.write(back)
            assert await la.next() == back
            for i in range(50):
                await a.write(frame(b.mac, a.mac, i.to_bytes(2, "big") * 30))
            got = [await lb.next() for _ in range(50)]
            assert sorted(g[14:16] for g in got) == sorted(i.to_bytes(2, "big") for i in range(50))
            assert a.stats().tx_packets >= 51
            assert b.stats().rx_packets >= 51
        finally:
            await la.stop()
            await lb.stop()
            await a.disconnect()  # type: ignore[attr-defined]
            await b.disconnect()  # type: ignore[attr-defined]

    @async_test
    async def test_oversized_frame_is_dropped(self) -> None:
        a, b = await self.make_pair()
        try:
            await a.write(frame(b.mac, a.mac, bytes(a.mtu + 1)))
            assert a.stats().tx_dropped == 1
            assert a.stats().tx_packets == 0
        finally:
            await a.disconnect()  # type: ignore[attr-defined]
            await b.disconnect()  # type: ignore[attr-defined]

    @async_test
    async def test_listen_ends_on_disconnect(self) -> None:
        a, b = await self.make_pair()
        task = asyncio.ensure_future(a.listen(lambda f: None))
        await asyncio.sleep(0)
        await a.disconnect()  # type: ignore[attr-defined]
        await asyncio.wait_for(task, 5)
        await b.disconnect()  # type: ignore[attr-defined]
