"""mirage-net: Ethernet interfaces implementing :class:`mirage.core.types.Network`.

- :class:`VnetInterface` on a :class:`Switch`: in-process, with seeded faults.
- :class:`SocketNetwork`: frames as datagrams over Unix or UDP sockets (QEMU dgram).
- :class:`TapNetwork`: a Linux TAP device.
- :class:`PacketNetwork`: AF_PACKET on an existing interface.
- :class:`PcapNetwork`: records another interface's traffic into a pcap file.
- :class:`VirtualTimeLoop` and :func:`run_virtual`: an event loop on a virtual clock,
  for runs over ``vnet`` that sleep and time out without waiting.

Backends are imported lazily, so importing this package opens nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._base import FrameDevice, format_mac, parse_mac, random_mac
    from ._link import Delivery, LinkConfig, LinkModel
    from ._virtual import VirtualTimeLoop, run_virtual
    from .packet import PacketNetwork
    from .pcap import PcapNetwork, PcapWriter
    from .socket import SocketNetwork
    from .tap import TapNetwork
    from .vnet import Switch, VnetInterface

__all__ = [
    "Delivery",
    "FrameDevice",
    "LinkConfig",
    "LinkModel",
    "PacketNetwork",
    "PcapNetwork",
    "PcapWriter",
    "SocketNetwork",
    "Switch",
    "TapNetwork",
    "VirtualTimeLoop",
    "VnetInterface",
    "format_mac",
    "parse_mac",
    "random_mac",
    "run_virtual",
]

_LAZY = {
    "Delivery": "_link",
    "FrameDevice": "_base",
    "LinkConfig": "_link",
    "LinkModel": "_link",
    "format_mac": "_base",
    "parse_mac": "_base",
    "random_mac": "_base",
    "PacketNetwork": "packet",
    "PcapNetwork": "pcap",
    "PcapWriter": "pcap",
    "SocketNetwork": "socket",
    "Switch": "vnet",
    "TapNetwork": "tap",
    "VnetInterface": "vnet",
    "VirtualTimeLoop": "_virtual",
    "run_virtual": "_virtual",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mirage.net' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"mirage.net.{module}"), name)
