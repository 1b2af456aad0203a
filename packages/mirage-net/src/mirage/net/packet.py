"""A raw AF_PACKET socket on an existing interface (a VM's NIC, a veth end).

The stack takes the interface over: it uses the interface's own MAC address and
sees every frame the interface receives; frames the host itself sends out of the
interface are ignored. The host's own IP configuration of that interface should be
empty, or the kernel answers too. Needs CAP_NET_RAW.
"""

from __future__ import annotations

import asyncio
import socket

from ._base import FrameDevice, parse_mac
from ._ifreq import get_mac, get_mtu, set_up

__all__ = ["PacketNetwork"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
RECV_SIZE = 65536


class PacketNetwork(FrameDevice):
    supports_direct = True

    def __init__(self, sock: socket.socket, name: str, mac: bytes, mtu: int) -> None:
        super().__init__(mac, mtu)
        self._sock = sock
        self.name = name
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def connect(
        cls, *, interface: str, mac: str | None = None, mtu: int | None = None
    ) -> PacketNetwork:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.bind((interface, ETH_P_ALL))
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            set_up(interface)
            own_mac = parse_mac(mac) if mac else get_mac(interface)
            link_mtu = get_mtu(interface)
        except BaseException:
            sock.close()
            raise
        return cls(sock, interface, own_mac, mtu or link_mtu)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                frame, address = self._sock.recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if address[2] == PACKET_OUTGOING:
                continue
            self._receive(frame)

    async def _transmit(self, frame: bytes) -> None:
        self._sock.send(frame)

    def _transmit_nowait(self, frame: bytes) -> bool:
        self._sock.send(frame)
        return True

    def _close(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
