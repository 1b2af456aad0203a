"""Ethernet II frames: ``decode`` and ``encode``.

No FCS (interfaces strip and add it). VLAN tags are not interpreted: a tagged frame
decodes with ethertype 0x8100.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import DecodeError

__all__ = ["BROADCAST", "ETHERTYPE_ARP", "ETHERTYPE_IPV4", "ETHERTYPE_IPV6", "EthernetFrame"]

BROADCAST = b"\xff" * 6
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
HEADER = 14


@dataclass(frozen=True, slots=True)
class EthernetFrame:
    """An Ethernet II frame: destination, source, EtherType and payload."""

    dst: bytes
    src: bytes
    ethertype: int
    payload: bytes

    @classmethod
    def decode(cls, data: bytes) -> EthernetFrame:
        if len(data) < HEADER:
            raise DecodeError("ethernet", f"frame of {len(data)} bytes is shorter than a header")
        ethertype = int.from_bytes(data[12:14], "big")
        if ethertype < 0x0600:
            raise DecodeError("ethernet", f"802.3 length field {ethertype}, not Ethernet II")
        return cls(bytes(data[0:6]), bytes(data[6:12]), ethertype, bytes(data[14:]))

    def encode(self) -> bytes:
        return self.dst + self.src + self.ethertype.to_bytes(2, "big") + self.payload
