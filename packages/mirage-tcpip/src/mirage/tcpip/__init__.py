"""mirage-tcpip: a userspace TCP/IP stack with sans-IO protocol cores.

- Codecs: :class:`EthernetFrame`, :class:`ArpPacket`, :class:`Ipv4Packet`,
  :class:`IcmpMessage`, :class:`UdpDatagram`, :class:`TcpSegment`; every decoder
  raises only :class:`DecodeError` on bad input.
- Cores (explicit time, no I/O): :class:`ArpCore`, :class:`Reassembler`,
  :class:`Connection` (TCP).
- Driver: :class:`DirectStack`, the ``direct_stack`` implementation of the ``stack``
  module type over any ``network``.

Names are imported lazily, so importing the package (or its plugin) loads nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._errors import DecodeError
    from .arp import ArpCore, ArpPacket
    from .ethernet import EthernetFrame
    from .icmp import IcmpMessage
    from .ipv4 import Ipv4Packet, Reassembler, fragment
    from .stack import DirectStack, TcpFlow
    from .tcp import Connection, IsnGenerator, State, TcpConfig, TcpSegment
    from .udp import UdpDatagram

__all__ = [
    "ArpCore",
    "ArpPacket",
    "Connection",
    "DecodeError",
    "DirectStack",
    "EthernetFrame",
    "IcmpMessage",
    "Ipv4Packet",
    "IsnGenerator",
    "Reassembler",
    "State",
    "TcpConfig",
    "TcpFlow",
    "TcpSegment",
    "UdpDatagram",
    "fragment",
]

_LAZY = {
    "ArpCore": "arp",
    "ArpPacket": "arp",
    "Connection": "tcp",
    "DecodeError": "_errors",
    "DirectStack": "stack",
    "EthernetFrame": "ethernet",
    "IcmpMessage": "icmp",
    "Ipv4Packet": "ipv4",
    "IsnGenerator": "tcp",
    "Reassembler": "ipv4",
    "State": "tcp",
    "TcpConfig": "tcp",
    "TcpFlow": "stack",
    "TcpSegment": "tcp",
    "UdpDatagram": "udp",
    "fragment": "ipv4",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mirage.tcpip' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mirage.tcpip.{module}"), name)
