"""UDP datagrams (RFC 768) with the IPv4 or IPv6 pseudo-header checksum."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._errors import DecodeError
from .checksum import checksum, pseudo_header

__all__ = ["PROTO_UDP", "UdpDatagram"]

PROTO_UDP = 17
_HEADER = struct.Struct("!HHHH")


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    """A UDP datagram: ports and payload."""

    src_port: int
    dst_port: int
    payload: bytes

    @classmethod
    def decode(cls, data: bytes, src: bytes, dst: bytes, *, verify: bool = True) -> UdpDatagram:
        """Decode ``data`` sent from ``src`` to ``dst``; a bad checksum is an error."""
        if len(data) < 8:
            raise DecodeError("udp", "shorter than a header")
        sport, dport, length, csum = _HEADER.unpack_from(data)
        if length < 8 or length > len(data):
            raise DecodeError("udp", f"length field {length} does not fit {len(data)} bytes")
        data = data[:length]
        if csum == 0 and len(src) == 16:
            raise DecodeError("udp", "no checksum over IPv6 (RFC 8200 8.1)")
        if verify and csum != 0 and checksum(pseudo_header(src, dst, PROTO_UDP, length) + data):
            raise DecodeError("udp", "bad checksum")
        return cls(sport, dport, bytes(data[8:]))

    def encode(self, src: bytes, dst: bytes) -> bytes:
        length = 8 + len(self.payload)
        head = _HEADER.pack(self.src_port, self.dst_port, length, 0)
        csum = checksum(pseudo_header(src, dst, PROTO_UDP, length) + head + self.payload)
        return _HEADER.pack(self.src_port, self.dst_port, length, csum or 0xFFFF) + self.payload
