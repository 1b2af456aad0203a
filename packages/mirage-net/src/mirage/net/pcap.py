"""Tee any interface into a pcap file (LINKTYPE_ETHERNET), readable by tshark.

:class:`PcapWriter` writes the classic libpcap format with microsecond timestamps.
:class:`PcapNetwork` wraps another :class:`~mirage.core.types.Network`: every frame
written through it and every frame it delivers to the listener is also recorded.
"""

from __future__ import annotations

import struct
import time
from typing import BinaryIO

from mirage.core.types import FrameCallback, Network, NetworkStats

__all__ = ["PcapNetwork", "PcapWriter"]

MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1


class PcapWriter:
    def __init__(self, file: BinaryIO, snaplen: int = 65535) -> None:
        self._file = file
        self.closed = False
        self.snaplen = snaplen
        file.write(struct.pack("<IHHiIII", MAGIC, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def record(self, frame: bytes, timestamp: float | None = None) -> None:
        if self.closed:
            return
        ts = time.time() if timestamp is None else timestamp
        sec = int(ts)
        usec = int((ts - sec) * 1_000_000)
        data = frame[: self.snaplen]
        self._file.write(struct.pack("<IIII", sec, usec, len(data), len(frame)) + data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self.closed = True
        self._file.close()


class PcapNetwork:
    """A :class:`~mirage.core.types.Network` that records what crosses ``network``."""

    def __init__(self, network: Network, writer: PcapWriter) -> None:
        self._network = network
        self._writer = writer

    @classmethod
    async def connect(cls, *, network: Network, pcap: str) -> PcapNetwork:
        return cls(network, PcapWriter(open(pcap, "wb")))

    @property
    def mac(self) -> bytes:
        return self._network.mac

    @property
    def mtu(self) -> int:
        return self._network.mtu

    def stats(self) -> NetworkStats:
        return self._network.stats()

    async def write(self, frame: bytes) -> None:
        self._writer.record(frame)
        await self._network.write(frame)

    def write_nowait(self, frame: bytes) -> bool:
        """As :meth:`FrameDevice.write_nowait`, recording the frame once it is sent."""
        inner = getattr(self._network, "write_nowait", None)
        if inner is None or not inner(frame):
            return False
        self._writer.record(frame)
        return True

    async def listen(self, callback: FrameCallback) -> None:
        def tee(frame: bytes) -> object:
            self._writer.record(frame)
            return callback(frame)

        await self._network.listen(tee)  # type: ignore[arg-type]

    async def disconnect(self) -> None:
        """Close the file; the wrapped network is disconnected by whoever connected it."""
        self._writer.close()
