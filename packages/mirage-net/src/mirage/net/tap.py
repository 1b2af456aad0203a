"""A Linux TAP device: the kernel's side of a virtual Ethernet cable.

``TapNetwork.connect(name=...)`` opens ``/dev/net/tun`` and attaches to the TAP
device of that name, creating it (for the life of the process) if it does not
exist, and sets it up. Frames written here arrive at the kernel's interface; frames
the kernel sends there are read here. The stack on our side uses its own MAC
address, not the kernel interface's. Needs CAP_NET_ADMIN.

With ``offload=True`` the device carries a virtio-net header (``IFF_VNET_HDR``) and
tells the kernel it may hand us TCP segments of up to 64 KiB (TSO, and checksum
offload, which TSO requires): the kernel then sends one large segment where it would
have sent dozens, which saves a userspace stack most of its per-packet work. Frames
read this way may be larger than the MTU; their TCP or UDP checksum, which the
kernel leaves to the device, is filled in here before the frame is delivered, so the
stack above sees ordinary frames with correct checksums. Frames we write carry an
empty header (no offload asked of the kernel).
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
TUNSETOFFLOAD = 0x400454D0
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
READ_SIZE = 65536 + 256  # a 64 KiB segment, its headers and the virtio-net header

VNET_HDR = struct.Struct("=BBHHHH")  # flags, gso type, hdr len, gso size, csum start, offset
VNET_HDR_LEN = VNET_HDR.size  # 10
F_NEEDS_CSUM = 1
GSO_TCPV4 = 1
GSO_TCPV6 = 4
_EMPTY_HDR = bytes(VNET_HDR_LEN)


def _fill_checksum(frame: bytes, start: int, offset: int) -> bytes:
    """Complete a checksum the kernel left partial: the field holds the folded sum
    of the pseudo-header; the Internet checksum of ``frame[start:]`` goes there."""
    at = start + offset
    if start >= len(frame) or at + 2 > len(frame):
        return frame
    data = frame[start:]
    total = int.from_bytes(data + b"\0" * (len(data) & 1), "big")
    folded = total % 0xFFFF  # one's-complement sum of 16-bit words, modulo 2^16 - 1
    if folded == 0 and total:
        folded = 0xFFFF
    value = ~folded & 0xFFFF
    return frame[:at] + value.to_bytes(2, "big") + frame[at + 2 :]


class TapNetwork(FrameDevice):
    supports_direct = True

    def __init__(self, fd: int, name: str, mac: bytes, mtu: int, *, offload: bool = False) -> None:
        super().__init__(mac, mtu)
        self._fd = fd
        self.name = name
        self.offload = offload
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._readable_vnet if offload else self._readable)

    @classmethod
    async def connect(
        cls,
        *,
        name: str = "tap0",
        mac: str | None = None,
        mtu: int | None = None,
        offload: bool = False,
    ) -> TapNetwork:
        if len(name.encode()) >= 16:
            raise ValueError(f"interface name {name!r} is longer than 15 bytes")
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if offload else 0)
            ifr = struct.pack("16sH", name.encode(), flags).ljust(40, b"\0")
            actual = fcntl.ioctl(fd, TUNSETIFF, ifr)[:16].rstrip(b"\0").decode()
            if offload:
                fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
            set_up(actual)
            link_mtu = get_mtu(actual)
        except BaseException:
            os.close(fd)
            raise
        return cls(
            fd,
            actual,
            parse_mac(mac) if mac else random_mac(),
            mtu or link_mtu,
            offload=offload,
        )

    def _readable(self) -> None:
        for _ in range(64):
            try:
                frame = os.read(self._fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._receive(frame)

    def _readable_vnet(self) -> None:
        for _ in range(64):
            try:
                data = os.read(self._fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(data) <= VNET_HDR_LEN:
                self._stats.rx_dropped += 1
                continue
            flags, _, _, _, start, offset = VNET_HDR.unpack_from(data)
            frame = data[VNET_HDR_LEN:]
            if flags & F_NEEDS_CSUM:
                frame = _fill_checksum(frame, start, offset)
            self._receive(frame)

    def write_tso(self, frame: bytes, segment_size: int, header_len: int) -> bool:
        """Send one TCP segment of up to 64 KiB for the kernel to take as the
        ``segment_size``-byte segments it stands for (TCP segmentation offload;
        ``header_len``: its Ethernet, IP and TCP headers). The segment's checksums
        must be complete. False, and nothing sent, without ``offload``."""
        if not self.offload or self._closed:
            return False
        ipv6 = frame[12:14] == b"\x86\xdd"
        header = VNET_HDR.pack(0, GSO_TCPV6 if ipv6 else GSO_TCPV4, header_len, segment_size, 0, 0)
        try:
            os.writev(self._fd, (header, frame))
        except OSError:
            self._stats.tx_dropped += 1
            return True
        self._stats.tx_packets += 1
        self._stats.tx_bytes += len(frame)
        return True

    async def _transmit(self, frame: bytes) -> None:
        self._transmit_nowait(frame)

    def _transmit_nowait(self, frame: bytes) -> bool:
        if self.offload:
            os.writev(self._fd, (_EMPTY_HDR, frame))
        else:
            os.write(self._fd, frame)
        return True

    def _close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
