"""ICMPv6 (RFC 4443) and the Neighbor Discovery messages (RFC 4861).

:class:`Icmpv6Message` is the generic message (type, code, the 4 bytes after the
checksum, the body), its checksum over the IPv6 pseudo-header verified on decode.
:class:`NdpMessage` reads and writes the bodies of router solicitations and
advertisements and neighbor solicitations and advertisements with the options we use
(source and target link-layer address, prefix information, MTU); unknown options are
skipped, a zero-length option is an error (RFC 4861 4.6).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._errors import DecodeError
from .checksum import checksum, pseudo_header

__all__ = [
    "TYPE_DEST_UNREACHABLE",
    "TYPE_ECHO_REPLY",
    "TYPE_ECHO_REQUEST",
    "TYPE_NEIGHBOR_ADVERTISEMENT",
    "TYPE_REDIRECT",
    "TYPE_NEIGHBOR_SOLICITATION",
    "TYPE_PACKET_TOO_BIG",
    "TYPE_ROUTER_ADVERTISEMENT",
    "TYPE_ROUTER_SOLICITATION",
    "Icmpv6Message",
    "NdpMessage",
    "PrefixInfo",
]

PROTO_ICMPV6 = 58
TYPE_DEST_UNREACHABLE = 1
TYPE_PACKET_TOO_BIG = 2
TYPE_ECHO_REQUEST = 128
TYPE_ECHO_REPLY = 129
TYPE_ROUTER_SOLICITATION = 133
TYPE_ROUTER_ADVERTISEMENT = 134
TYPE_NEIGHBOR_SOLICITATION = 135
TYPE_NEIGHBOR_ADVERTISEMENT = 136
TYPE_REDIRECT = 137
CODE_PORT_UNREACHABLE = 4

OPT_SOURCE_LL = 1
OPT_TARGET_LL = 2
OPT_PREFIX = 3
OPT_MTU = 5

NA_ROUTER = 0x80000000
NA_SOLICITED = 0x40000000
NA_OVERRIDE = 0x20000000

_HEADER = struct.Struct("!BBHI")
_PREFIX = struct.Struct("!BBIII16s")


@dataclass(frozen=True, slots=True)
class Icmpv6Message:
    """An ICMPv6 message: type, code, the header's last 4 bytes and the body."""

    type: int
    code: int
    rest: int
    body: bytes

    @classmethod
    def decode(cls, data: bytes, src: bytes, dst: bytes) -> Icmpv6Message:
        if len(data) < 8:
            raise DecodeError("icmpv6", "shorter than a header")
        if checksum(pseudo_header(src, dst, PROTO_ICMPV6, len(data)) + data):
            raise DecodeError("icmpv6", "bad checksum")
        type_, code, _, rest = _HEADER.unpack_from(data)
        return cls(type_, code, rest, bytes(data[8:]))

    def encode(self, src: bytes, dst: bytes) -> bytes:
        head = _HEADER.pack(self.type, self.code, 0, self.rest)
        length = 8 + len(self.body)
        csum = checksum(pseudo_header(src, dst, PROTO_ICMPV6, length) + head + self.body)
        return _HEADER.pack(self.type, self.code, csum, self.rest) + self.body

    @property
    def ident(self) -> int:
        return self.rest >> 16

    @property
    def seq(self) -> int:
        return self.rest & 0xFFFF


@dataclass(frozen=True, slots=True)
class PrefixInfo:
    """A Prefix Information option of a Router Advertisement (RFC 4861 4.6.2)."""

    prefix: bytes
    length: int
    on_link: bool
    autonomous: bool
    valid_lifetime: int
    preferred_lifetime: int


@dataclass(frozen=True, slots=True)
class NdpMessage:
    """An RS, RA, NS or NA. ``target`` is for NS/NA; ``flags`` is the NA flag word or,
    for an RA, (hop limit << 24) | (M/O flags << 16) | router lifetime."""

    type: int
    target: bytes = b""
    flags: int = 0
    source_ll: bytes | None = None
    target_ll: bytes | None = None
    prefixes: tuple[PrefixInfo, ...] = ()
    mtu: int | None = None
    reachable_time: int = 0
    retrans_timer: int = 0
    destination: bytes = b""
    """For a redirect: the destination whose better first hop is ``target``."""

    @property
    def router_lifetime(self) -> int:
        return self.flags & 0xFFFF

    @classmethod
    def parse(cls, message: Icmpv6Message) -> NdpMessage:
        body = message.body
        kind = message.type
        target = destination = b""
        reachable = retrans = 0
        if kind == TYPE_ROUTER_SOLICITATION:
            options = body
        elif kind == TYPE_ROUTER_ADVERTISEMENT:
            if len(body) < 8:
                raise DecodeError("ndp", "router advertisement truncated")
            reachable, retrans = struct.unpack_from("!II", body)
            options = body[8:]
        elif kind in (TYPE_NEIGHBOR_SOLICITATION, TYPE_NEIGHBOR_ADVERTISEMENT):
            if len(body) < 16:
                raise DecodeError("ndp", "neighbor message truncated")
            target = bytes(body[:16])
            options = body[16:]
        elif kind == TYPE_REDIRECT:
            # RFC 4861 4.5: 4 reserved bytes (the ICMPv6 "rest"), target, destination.
            if len(body) < 32:
                raise DecodeError("ndp", "redirect truncated")
            target = bytes(body[:16])
            destination = bytes(body[16:32])
            options = body[32:]
        else:
            raise DecodeError("ndp", f"ICMPv6 type {kind} is not neighbor discovery")
        if message.code != 0:
            raise DecodeError("ndp", f"code {message.code}")
        source_ll = target_ll = None
        prefixes: list[PrefixInfo] = []
        mtu = None
        i = 0
        while i < len(options):
            if i + 2 > len(options):
                raise DecodeError("ndp", "option truncated")
            code, units = options[i], options[i + 1]
            size = units * 8
            if size == 0 or i + size > len(options):
                raise DecodeError("ndp", f"option {code} has a bad length")
            value = options[i + 2 : i + size]
            if code == OPT_SOURCE_LL and len(value) >= 6:
                source_ll = bytes(value[:6])
            elif code == OPT_TARGET_LL and len(value) >= 6:
                target_ll = bytes(value[:6])
            elif code == OPT_PREFIX and size == 32:
                length, flags, valid, preferred, _, prefix = _PREFIX.unpack_from(value)
                prefixes.append(
                    PrefixInfo(
                        bytes(prefix),
                        length,
                        bool(flags & 0x80),
                        bool(flags & 0x40),
                        valid,
                        preferred,
                    )
                )
            elif code == OPT_MTU and size == 8:
                mtu = int.from_bytes(value[2:6], "big")
            i += size
        return cls(
            kind,
            target,
            message.rest,
            source_ll,
            target_ll,
            tuple(prefixes),
            mtu,
            reachable,
            retrans,
            destination,
        )

    def to_icmp(self) -> Icmpv6Message:
        options = bytearray()
        if self.source_ll is not None:
            options += bytes((OPT_SOURCE_LL, 1)) + self.source_ll
        if self.target_ll is not None:
            options += bytes((OPT_TARGET_LL, 1)) + self.target_ll
        for p in self.prefixes:
            flags = (0x80 if p.on_link else 0) | (0x40 if p.autonomous else 0)
            options += bytes((OPT_PREFIX, 4)) + _PREFIX.pack(
                p.length, flags, p.valid_lifetime, p.preferred_lifetime, 0, p.prefix
            )
        if self.mtu is not None:
            options += bytes((OPT_MTU, 1, 0, 0)) + self.mtu.to_bytes(4, "big")
        if self.type == TYPE_ROUTER_ADVERTISEMENT:
            body = struct.pack("!II", self.reachable_time, self.retrans_timer) + options
        elif self.type == TYPE_ROUTER_SOLICITATION:
            body = bytes(options)
        elif self.type == TYPE_REDIRECT:
            body = self.target + self.destination + options
        else:
            body = self.target + options
        return Icmpv6Message(self.type, 0, self.flags, body)
