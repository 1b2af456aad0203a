"""Received frames waiting for a ``listen`` callback, and the interface counters.

The ring task of a network device calls :meth:`FrameInbox.put` for each frame; the
frames wait in a bounded queue until :meth:`FrameInbox.listen` hands them, in order,
to the caller's callback. A full queue drops the frame and counts it. ``listen``
returns once the inbox is closed. :class:`InboxNetwork` is the part of a mirage
``Network`` that both ends of a network device answer from their inbox.
"""

from __future__ import annotations

import asyncio
import inspect
import os

from mirage.core.types import FrameCallback, NetworkStats

__all__ = [
    "ETH_HEADER",
    "MTU",
    "FrameInbox",
    "InboxNetwork",
    "format_mac",
    "parse_mac",
    "random_mac",
]

ETH_HEADER = 14
MTU = 1500
QUEUE_FRAMES = 1024


def random_mac() -> bytes:
    """A random, locally administered, unicast MAC address."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFC) | 0x02
    return bytes(raw)


def parse_mac(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (as the toolstack writes ``mac`` in xenstore)."""
    parts = text.strip().split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError(f"{text!r} is not a MAC address")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not a MAC address") from None


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


class FrameInbox:
    def __init__(self) -> None:
        self.stats = NetworkStats()
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_FRAMES)
        self.closed = False

    def put(self, frame: bytes) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.stats.rx_dropped += 1

    def snapshot(self) -> NetworkStats:
        s = self.stats
        return NetworkStats(
            s.rx_bytes, s.rx_packets, s.tx_bytes, s.tx_packets, s.rx_dropped, s.tx_dropped
        )

    async def listen(self, callback: FrameCallback) -> None:
        while not self.closed:
            frame = await self._queue.get()
            if frame is None:
                break
            self.stats.rx_packets += 1
            self.stats.rx_bytes += len(frame)
            result = callback(frame)
            if inspect.isawaitable(result):
                await result

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while True:  # make room for the stop marker
            try:
                self._queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()


class InboxNetwork:
    """``mac``, ``mtu``, ``stats`` and ``listen`` of a device end that receives into
    ``_inbox`` and has the address ``_mac``."""

    _mac: bytes
    _inbox: FrameInbox

    @property
    def mac(self) -> bytes:
        return self._mac

    @property
    def mtu(self) -> int:
        return MTU

    def stats(self) -> NetworkStats:
        return self._inbox.snapshot()

    async def listen(self, callback: FrameCallback) -> None:
        await self._inbox.listen(callback)
