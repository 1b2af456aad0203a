"""What every interface of this package shares: a receive queue, ``listen`` and stats.

Theory of operation: a backend calls :meth:`FrameDevice._receive` for every frame that
arrives (from a reader callback or another task); frames wait in a bounded queue
until :meth:`listen` hands them, in order, to the caller's callback. A full queue
drops the frame and counts it. ``listen`` returns once the device is disconnected.
Backends that read from file descriptors (``supports_direct``) can instead hand
each frame to a synchronous callback as it is read (:meth:`listen_direct`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable

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
        self._direct: FrameCallback | None = None
        self._stopped: asyncio.Future[None] | None = None

    supports_direct = False
    """Whether frames arrive from the event loop's reader callbacks (file descriptor
    backends), so :meth:`listen_direct` can hand them over from there."""

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

    def write_nowait(self, frame: bytes) -> bool:
        """Send one frame now, without awaiting: True once it is sent (or counted as
        dropped, as :meth:`write` would), False if the backend would have to wait,
        and the caller should ``await write(frame)`` instead."""
        if self._closed or len(frame) > self._mtu + ETH_HEADER or len(frame) < ETH_HEADER:
            self._stats.tx_dropped += 1
            return True
        try:
            if not self._transmit_nowait(frame):
                return False
        except OSError:
            self._stats.tx_dropped += 1
            return True
        self._stats.tx_packets += 1
        self._stats.tx_bytes += len(frame)
        return True

    def _transmit_nowait(self, frame: bytes) -> bool:
        """Send ``frame`` if that needs no waiting (then True); backends override."""
        return False

    def _receive(self, frame: bytes) -> None:
        if self._closed or not frame:
            return
        direct = self._direct
        if direct is not None:
            self._stats.rx_packets += 1
            self._stats.rx_bytes += len(frame)
            direct(frame)
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._stats.rx_dropped += 1

    async def listen(self, callback: FrameCallback) -> None:
        """Call ``callback(frame)`` for every received frame until disconnected."""
        queue = self._queue
        stats = self._stats
        while not self._closed:
            frame = await queue.get()
            # Hand over every frame already queued before yielding to the loop, so
            # a burst read in one go is processed in one go.
            while frame is not None:
                stats.rx_packets += 1
                stats.rx_bytes += len(frame)
                result = callback(frame)
                if isinstance(result, Awaitable):  # not inspect: a VM boot defers it
                    await result
                if self._closed or queue.empty():
                    break
                frame = queue.get_nowait()
            if frame is None:
                break

    async def listen_direct(self, callback: FrameCallback) -> None:
        """As :meth:`listen`, for a synchronous ``callback`` that does not raise:
        where the backend allows it (``supports_direct``), frames are handed over by
        the reader callback that reads them, without the queue and a task switch."""
        if not self.supports_direct:
            await self.listen(callback)
            return
        queue = self._queue
        while not queue.empty():  # what arrived before
            frame = queue.get_nowait()
            if frame is None:
                return
            self._stats.rx_packets += 1
            self._stats.rx_bytes += len(frame)
            callback(frame)
        if self._closed:
            return
        self._stopped = asyncio.get_running_loop().create_future()
        self._direct = callback
        try:
            await self._stopped
        finally:
            self._direct = None

    async def disconnect(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
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
