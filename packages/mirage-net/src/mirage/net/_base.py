"""What every interface of this package shares: a receive queue, ``listen`` and stats.

Theory of operation: a backend calls :meth:`FrameDevice._receive` for every frame that
arrives (from a reader callback or another task); frames wait in a bounded queue
until :meth:`listen` hands them, in order, to the caller's callback. A full queue
drops the frame and counts it. ``listen`` returns once the device is disconnected.
"""

from __future__ import annotations

import asyncio
import inspect
import os

from mirage.core.types import FrameCallback, NetworkStats

__all__ = ["ETH_HEADER", "FrameDevice", "random_mac", "parse_mac", "format_mac"]

ETH_HEADER = 14
QUEUE_FRAMES = 4096


def random_mac() -> bytes:
    """A random, locally administered, unicast MAC address."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFC) | 0x02
    return bytes(raw)


def parse_mac(text: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise ValueError(f"{text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)") from None


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


class FrameDevice:
    """Base of the interfaces: subclasses implement ``_transmit`` and ``_close``."""

    def __init__(self, mac: bytes, mtu: int) -> None:
        if len(mac) != 6:
            raise ValueError("a MAC address has 6 bytes")
        self._mac = bytes(mac)
        self._mtu = mtu
        self._stats = NetworkStats()
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_FRAMES)
        self._closed = False

    @property
    def mac(self) -> bytes:
        return self._mac

    @property
    def mtu(self) -> int:
        return self._mtu

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> NetworkStats:
        s = self._stats
        return NetworkStats(
            s.rx_bytes, s.rx_packets, s.tx_bytes, s.tx_packets, s.rx_dropped, s.tx_dropped
        )

    async def write(self, frame: bytes) -> None:
        """Send one Ethernet frame (header included, no FCS). Oversized or closed:
        counted as dropped."""
        if self._closed or len(frame) > self._mtu + ETH_HEADER or len(frame) < ETH_HEADER:
            self._stats.tx_dropped += 1
            return
        try:
            await self._transmit(frame)
        except OSError:
            self._stats.tx_dropped += 1
            return
        self._stats.tx_packets += 1
        self._stats.tx_bytes += len(frame)

    def _receive(self, frame: bytes) -> None:
        if self._closed or not frame:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._stats.rx_dropped += 1

    async def listen(self, callback: FrameCallback) -> None:
        """Call ``callback(frame)`` for every received frame until disconnected."""
        while not self._closed:
            frame = await self._queue.get()
            if frame is None:
                break
            self._stats.rx_packets += 1
            self._stats.rx_bytes += len(frame)
            result = callback(frame)
            if inspect.isawaitable(result):
                await result

    async def disconnect(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close()
        while True:  # make room for the stop marker
            try:
                self._queue.put_nowait(None)
                break
            except asyncio.QueueFull:
                self._queue.get_nowait()

    async def _transmit(self, frame: bytes) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Release the backend (called once)."""
