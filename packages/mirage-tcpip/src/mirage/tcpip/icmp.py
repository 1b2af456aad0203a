"""ICMPv4 messages (RFC 792): echo, destination unreachable, time exceeded."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._errors import DecodeError
from .checksum import checksum

__all__ = [
    "CODE_FRAG_NEEDED",
    "CODE_PORT_UNREACHABLE",
    "CODE_PROTO_UNREACHABLE",
    "IcmpMessage",
    "PROTO_ICMP",
    "TYPE_DEST_UNREACHABLE",
    "TYPE_ECHO_REPLY",
    "TYPE_ECHO_REQUEST",
    "TYPE_TIME_EXCEEDED",
]

PROTO_ICMP = 1
TYPE_ECHO_REPLY = 0
TYPE_DEST_UNREACHABLE = 3
TYPE_ECHO_REQUEST = 8
TYPE_TIME_EXCEEDED = 11
CODE_PROTO_UNREACHABLE = 2
CODE_PORT_UNREACHABLE = 3
CODE_FRAG_NEEDED = 4
_HEADER = struct.Struct("!BBHI")


@dataclass(frozen=True, slots=True)
class IcmpMessage:
    """``rest`` is the header's second word (identifier and sequence of an echo,
    next-hop MTU of "fragmentation needed"); ``payload`` follows the header."""

    type: int
    code: int
    rest: int
    payload: bytes

    @classmethod
    def decode(cls, data: bytes) -> IcmpMessage:
        if len(data) < 8:
            raise DecodeError("icmp", "shorter than a header")
        if checksum(data):
            raise DecodeError("icmp", "bad checksum")
        type_, code, _, rest = _HEADER.unpack_from(data)
        return cls(type_, code, rest, bytes(data[8:]))

    def encode(self) -> bytes:
        head = _HEADER.pack(self.type, self.code, 0, self.rest)
        csum = checksum(head + self.payload)
        return _HEADER.pack(self.type, self.code, csum, self.rest) + self.payload

    @property
    def ident(self) -> int:
        return self.rest >> 16

    @property
    def seq(self) -> int:
        return self.rest & 0xFFFF

    @classmethod
    def echo_request(cls, ident: int, seq: int, payload: bytes) -> IcmpMessage:
        return cls(TYPE_ECHO_REQUEST, 0, (ident << 16) | seq, payload)

    @classmethod
    def unreachable(cls, code: int, offending: bytes, mtu: int = 0) -> IcmpMessage:
        """An error about ``offending`` (its IP header and the first 8 bytes after)."""
        ihl = (offending[0] & 0x0F) * 4 if offending else 0
        return cls(TYPE_DEST_UNREACHABLE, code, mtu & 0xFFFF, bytes(offending[: ihl + 8]))
