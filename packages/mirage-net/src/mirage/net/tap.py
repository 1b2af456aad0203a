"""A Linux TAP device: the kernel's side of a virtual Ethernet cable.

``TapNetwork.connect(name=...)`` opens ``/dev/net/tun`` and attaches to the TAP
device of that name, creating it (for the life of the process) if it does not
exist, and sets it up. Frames written here arrive at the kernel's interface; frames
the kernel sends there are read here. The stack on our side uses its own MAC
address, not the kernel interface's. Needs CAP_NET_ADMIN.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct

from ._base import FrameDevice, parse_mac, random_mac
from ._ifreq import get_mtu, set_up

__all__ = ["TapNetwork"]

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
READ_SIZE = 65536


class TapNetwork(FrameDevice):
    def __init__(self, fd: int, name: str, mac: bytes, mtu: int) -> None:
        super().__init__(mac, mtu)
        self._fd = fd
        self.name = name
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._readable)

    @classmethod
    async def connect(
        cls, *, name: str = "tap0", mac: str | None = None, mtu: int | None = None
    ) -> TapNetwork:
        if len(name.encode()) >= 16:
            raise ValueError(f"interface name {name!r} is longer than 15 bytes")
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            ifr = struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI).ljust(40, b"\0")
            actual = fcntl.ioctl(fd, TUNSETIFF, ifr)[:16].rstrip(b"\0").decode()
            set_up(actual)
            link_mtu = get_mtu(actual)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, actual, parse_mac(mac) if mac else random_mac(), mtu or link_mtu)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                frame = os.read(self._fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._receive(frame)

    async def _transmit(self, frame: bytes) -> None:
        os.write(self._fd, frame)

    def _close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
