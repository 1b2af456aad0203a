"""Ethernet frames as datagrams over Unix or UDP sockets (QEMU's ``-netdev dgram``).

Each frame is one datagram, with no header of its own, which is what QEMU's
``-netdev dgram,local.type=...,remote.type=...`` sends and expects; so a unikernel
process and a QEMU guest, or two unikernel processes, share a point-to-point link
without privileges. Addresses are written ``udp:HOST:PORT`` or ``unix:PATH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from ._base import FrameDevice, parse_mac, random_mac

__all__ = ["SocketNetwork", "parse_address"]

RECV_SIZE = 65536


def parse_address(text: str) -> tuple[int, str | tuple[str, int]]:
    """``udp:HOST:PORT`` or ``unix:PATH`` -> (address family, socket address)."""
    kind, _, rest = text.partition(":")
    if kind == "unix" and rest:
        return socket.AF_UNIX, rest
    if kind == "udp":
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        if host and port.isdigit():
            return (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, int(port))
    raise ValueError(f"{text!r} is not an address: use udp:HOST:PORT or unix:PATH")


class SocketNetwork(FrameDevice):
    supports_direct = True

    def __init__(
        self, sock: socket.socket, remote: str | tuple[str, int], mac: bytes, mtu: int
    ) -> None:
        super().__init__(mac, mtu)
        self._sock = sock
        self._remote = remote
        self._unlink = sock.getsockname() if sock.family == socket.AF_UNIX else None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def connect(
        cls, *, local: str, remote: str, mac: str | None = None, mtu: int = 1500
    ) -> SocketNetwork:
        family, local_addr = parse_address(local)
        remote_family, remote_addr = parse_address(remote)
        if family != remote_family:
            raise ValueError(f"{local!r} and {remote!r} are not of the same kind")
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_UNIX:
                assert isinstance(local_addr, str)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(local_addr)
            sock.bind(local_addr)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except BaseException:
            sock.close()
            raise
        return cls(sock, remote_addr, parse_mac(mac) if mac else random_mac(), mtu)

    @property
    def local_address(self) -> object:
        return self._sock.getsockname()

    def _readable(self) -> None:
        for _ in range(64):
            try:
                frame = self._sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. ECONNREFUSED reported for an earlier UDP send
            self._receive(frame)

    def _transmit_nowait(self, frame: bytes) -> bool:
        try:
            self._sock.sendto(frame, self._remote)
        except BlockingIOError:
            return False  # the peer's queue is full: the caller awaits write()
        except (ConnectionRefusedError, FileNotFoundError):
            self._stats.tx_dropped += 1  # nobody there yet: a link with no peer
            self._stats.tx_packets -= 1
            self._stats.tx_bytes -= len(frame)
        return True

    async def _transmit(self, frame: bytes) -> None:
        try:
            try:
                self._sock.sendto(frame, self._remote)
            except BlockingIOError:  # the peer's queue is full: wait, as a cable would not
                await asyncio.wait_for(self._loop.sock_sendto(self._sock, frame, self._remote), 1.0)
        except (TimeoutError, ConnectionRefusedError, FileNotFoundError):
            self._stats.tx_dropped += 1  # nobody there yet: a link with no peer
            self._stats.tx_packets -= 1
            self._stats.tx_bytes -= len(frame)

    def _close(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        if isinstance(self._unlink, str) and self._unlink:
            with contextlib.suppress(OSError):
                os.unlink(self._unlink)
