"""IPv6 packets (RFC 8200): the fixed header codec and address helpers.

``Ipv6Packet.decode`` checks the version and the payload length and walks the
hop-by-hop, routing and destination options headers to the upper-layer protocol
(their contents are skipped, which RFC 8200 4 allows for options we do not know only
when their type says "skip"; we do not act on any). A fragment header ends the walk:
the packet comes back with ``next_header == PROTO_FRAGMENT`` and the fragment header
at the start of its payload, for :meth:`Ipv6Fragment.decode`; the stack reassembles
fragments with the overlap-safe :class:`~mirage.tcpip.ipv4.Reassembler` (RFC 5722:
an overlapping fragment discards the datagram). :func:`fragment6` splits a packet
that does not fit the MTU (RFC 8200 4.5).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ._errors import DecodeError

__all__ = [
    "ALL_NODES",
    "ALL_ROUTERS",
    "PROTO_FRAGMENT",
    "PROTO_ICMPV6",
    "UNSPECIFIED",
    "Ipv6Fragment",
    "Ipv6Packet",
    "fragment6",
    "eui64_interface_id",
    "is_link_local",
    "is_multicast",
    "link_local",
    "multicast_mac",
    "solicited_node",
    "text",
]

_HEADER = struct.Struct("!IHBB16s16s")
PROTO_HOP_BY_HOP = 0
PROTO_ROUTING = 43
PROTO_FRAGMENT = 44
PROTO_ICMPV6 = 58
PROTO_NONE = 59
PROTO_DEST_OPTS = 60
_SKIPPED = (PROTO_HOP_BY_HOP, PROTO_ROUTING, PROTO_DEST_OPTS)

UNSPECIFIED = bytes(16)
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")


def text(raw: bytes) -> str:
    return str(ipaddress.IPv6Address(raw))


def is_multicast(address: bytes) -> bool:
    return address[0] == 0xFF


def is_link_local(address: bytes) -> bool:
    return address[0] == 0xFE and address[1] & 0xC0 == 0x80


def solicited_node(address: bytes) -> bytes:
    """ff02::1:ffXX:XXXX for ``address`` (RFC 4291 2.7.1)."""
    return bytes.fromhex("ff0200000000000000000001ff") + address[13:]


def multicast_mac(address: bytes) -> bytes:
    """The Ethernet address of an IPv6 multicast group (RFC 2464 7)."""
    return b"\x33\x33" + address[12:]


def eui64_interface_id(mac: bytes) -> bytes:
    """The modified EUI-64 interface identifier of ``mac`` (RFC 4291 appendix A)."""
    return bytes((mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]))


def link_local(mac: bytes) -> bytes:
    return bytes.fromhex("fe800000000000000000000000000000")[:8] + eui64_interface_id(mac)


@dataclass(frozen=True, slots=True)
class Ipv6Packet:
    """An IPv6 packet: addresses, next header, payload and the fixed header's fields."""

    src: bytes
    dst: bytes
    next_header: int
    payload: bytes
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0

    @property
    def proto(self) -> int:
        return self.next_header

    @classmethod
    def decode(cls, data: bytes) -> Ipv6Packet:
        if len(data) < 40:
            raise DecodeError("ipv6", "shorter than a header")
        word, length, next_header, hop_limit, src, dst = _HEADER.unpack_from(data)
        if word >> 28 != 6:
            raise DecodeError("ipv6", f"version {word >> 28}")
        if 40 + length > len(data):
            raise DecodeError("ipv6", f"payload length {length} exceeds {len(data) - 40} bytes")
        if length == 0 and next_header == PROTO_HOP_BY_HOP:
            raise DecodeError("ipv6", "jumbograms are not supported")
        payload = data[40 : 40 + length]
        offset = 0
        while next_header in _SKIPPED:
            if offset + 2 > len(payload):
                raise DecodeError("ipv6", f"extension header {next_header} truncated")
            size = (payload[offset + 1] + 1) * 8
            if offset + size > len(payload):
                raise DecodeError("ipv6", f"extension header {next_header} overruns the packet")
            next_header = payload[offset]
            offset += size
        return cls(
            bytes(src),
            bytes(dst),
            next_header,
            bytes(payload[offset:]),
            hop_limit,
            (word >> 20) & 0xFF,
            word & 0xFFFFF,
        )

    def encode(self) -> bytes:
        word = (6 << 28) | (self.traffic_class << 20) | self.flow_label
        head = _HEADER.pack(
            word, len(self.payload), self.next_header, self.hop_limit, self.src, self.dst
        )
        return head + self.payload


_FRAGMENT = struct.Struct("!BBHI")


@dataclass(frozen=True, slots=True)
class Ipv6Fragment:
    """The fragment header (RFC 8200 4.5) and the fragment's data."""

    next_header: int
    offset: int
    """In bytes."""
    more: bool
    ident: int
    data: bytes

    @classmethod
    def decode(cls, payload: bytes) -> Ipv6Fragment:
        if len(payload) < 8:
            raise DecodeError("ipv6", "fragment header truncated")
        next_header, _, word, ident = _FRAGMENT.unpack_from(payload)
        return cls(next_header, word & 0xFFF8, bool(word & 1), ident, bytes(payload[8:]))

    def encode(self) -> bytes:
        word = self.offset | (1 if self.more else 0)
        return _FRAGMENT.pack(self.next_header, 0, word, self.ident) + self.data


def fragment6(packet: Ipv6Packet, mtu: int, ident: int) -> list[bytes]:
    """``packet`` encoded as packets of at most ``mtu`` bytes (one if it fits)."""
    if 40 + len(packet.payload) <= mtu:
        return [packet.encode()]
    step = (mtu - 48) // 8 * 8
    if step <= 0:
        raise ValueError(f"MTU {mtu} is too small to fragment into")
    data = packet.payload
    out = []
    for start in range(0, len(data), step):
        piece = Ipv6Fragment(
            packet.next_header, start, start + step < len(data), ident, data[start : start + step]
        )
        out.append(
            Ipv6Packet(
                packet.src,
                packet.dst,
                PROTO_FRAGMENT,
                piece.encode(),
                packet.hop_limit,
                packet.traffic_class,
                packet.flow_label,
            ).encode()
        )
    return out
