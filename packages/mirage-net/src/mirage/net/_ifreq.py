"""Linux interface ioctls shared by the TAP and packet backends."""

from __future__ import annotations

import fcntl
import socket
import struct

__all__ = ["get_mtu", "get_mac", "set_up"]

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1


def _ifreq(name: str, payload: bytes = b"") -> bytes:
    return struct.pack("16s", name.encode()) + payload.ljust(24, b"\0")


def _ioctl(request: int, name: str, payload: bytes = b"") -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return fcntl.ioctl(s.fileno(), request, _ifreq(name, payload))


def get_mtu(name: str) -> int:
    return int(struct.unpack_from("i", _ioctl(SIOCGIFMTU, name), 16)[0])


def get_mac(name: str) -> bytes:
    return _ioctl(SIOCGIFHWADDR, name)[18:24]


def set_up(name: str) -> None:
    flags = struct.unpack_from("H", _ioctl(SIOCGIFFLAGS, name), 16)[0]
    if not flags & IFF_UP:
        _ioctl(SIOCSIFFLAGS, name, struct.pack("H", flags | IFF_UP))
