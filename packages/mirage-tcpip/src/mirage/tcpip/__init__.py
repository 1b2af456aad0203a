"""mirage-tcpip: a userspace TCP/IP stack with sans-IO protocol cores.

- Codecs: :class:`EthernetFrame`, :class:`ArpPacket`, :class:`Ipv4Packet`,
  :class:`Ipv6Packet`, :class:`IcmpMessage`, :class:`Icmpv6Message`,
  :class:`NdpMessage`, :class:`UdpDatagram`, :class:`TcpSegment`,
  :class:`DhcpMessage`; every decoder raises only :class:`DecodeError` on bad input.
- Cores (explicit time, no I/O): :class:`ArpCore`, :class:`NdpCore`,
  :class:`Reassembler`, :class:`DhcpClient`, :class:`Connection` (TCP).
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
    from .dhcp import DhcpClient, DhcpConfig, DhcpMessage, Lease
    from .ethernet import EthernetFrame
    from .icmp import IcmpMessage
    from .icmpv6 import Icmpv6Message, NdpMessage
    from .ipv4 import Ipv4Packet, Reassembler, fragment
    from .ipv6 import Ipv6Packet
    from .ndp import NdpCore
    from .stack import DirectStack, TcpFlow
    from .tcp import Connection, IsnGenerator, State, TcpConfig, TcpSegment
    from .udp import UdpDatagram

__all__ = [
    "ArpCore",
    "ArpPacket",
    "Connection",
    "DecodeError",
    "DhcpClient",
    "DhcpConfig",
    "DhcpMessage",
    "DirectStack",
    "EthernetFrame",
    "IcmpMessage",
    "Icmpv6Message",
    "Ipv4Packet",
    "Ipv6Packet",
    "IsnGenerator",
    "Lease",
    "NdpCore",
    "NdpMessage",
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
    "DhcpClient": "dhcp",
    "DhcpConfig": "dhcp",
    "DhcpMessage": "dhcp",
    "DirectStack": "stack",
    "EthernetFrame": "ethernet",
    "IcmpMessage": "icmp",
    "Icmpv6Message": "icmpv6",
    "Ipv4Packet": "ipv4",
    "Ipv6Packet": "ipv6",
    "IsnGenerator": "tcp",
    "Lease": "dhcp",
    "NdpCore": "ndp",
    "NdpMessage": "icmpv6",
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
