"""IPv4 packets (RFC 791): codec, fragmentation and overlap-safe reassembly.

Decoding verifies the header checksum, the version, the header and total lengths.
:func:`fragment` splits a payload into packets that fit an MTU. :class:`Reassembler`
is a sans-IO core: ``push(packet, now)`` returns the whole datagram once its last
hole is filled. A fragment that overlaps data already held (RFC 5722's rule, applied
to IPv4 as RFC 8900 recommends) discards the whole datagram, which defeats
overlapping-fragment attacks. Limits bound memory: at most ``max_datagrams`` in
flight (the oldest is evicted), ``max_fragments`` each, 65,535 bytes each, and
``timeout`` seconds to complete (see ``expire``).
"""

from __future__ import annotations

import ipaddress
import struct
from collections import OrderedDict
from dataclasses import dataclass, field

from ._errors import DecodeError
from .checksum import checksum

__all__ = ["Ipv4Packet", "Reassembler", "addr", "fragment", "simple_header", "text"]

_HEADER = struct.Struct("!BBHHHBBH4s4s")
FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF


def addr(text_: str) -> bytes:
    """``"10.0.0.1"`` -> 4 bytes."""
    return ipaddress.IPv4Address(text_).packed


def text(raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw))


@dataclass(frozen=True, slots=True)
class Ipv4Packet:
    """An IPv4 packet: addresses, protocol, payload and the header fields we keep."""

    src: bytes
    dst: bytes
    proto: int
    payload: bytes
    ttl: int = 64
    ident: int = 0
    dont_fragment: bool = False
    more_fragments: bool = False
    offset: int = 0
    """Fragment offset in bytes."""
    tos: int = 0
    options: bytes = b""

    @classmethod
    def decode(cls, data: bytes) -> Ipv4Packet:
        if len(data) < 20:
            raise DecodeError("ipv4", "shorter than a header")
        vihl, tos, total, ident, frag, ttl, proto, _, src, dst = _HEADER.unpack_from(data)
        if vihl >> 4 != 4:
            raise DecodeError("ipv4", f"version {vihl >> 4}")
        ihl = (vihl & 0x0F) * 4
        if ihl < 20 or ihl > len(data):
            raise DecodeError("ipv4", f"header length {ihl}")
        if total < ihl or total > len(data):
            raise DecodeError("ipv4", f"total length {total} does not fit {len(data)} bytes")
        if checksum(data[:ihl]):
            raise DecodeError("ipv4", "bad header checksum")
        return cls(
            src,
            dst,
            proto,
            bytes(data[ihl:total]),
            ttl,
            ident,
            bool(frag & FLAG_DF),
            bool(frag & FLAG_MF),
            (frag & OFFSET_MASK) * 8,
            tos,
            bytes(data[20:ihl]),
        )

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.offset > 0

    def header(self) -> bytes:
        opts = self.options + b"\0" * (-len(self.options) % 4)
        ihl = 20 + len(opts)
        frag = (self.offset // 8) | (FLAG_DF if self.dont_fragment else 0)
        frag |= FLAG_MF if self.more_fragments else 0
        fields = (
            0x40 | ihl // 4,
            self.tos,
            ihl + len(self.payload),
            self.ident,
            frag,
            self.ttl,
            self.proto,
        )
        head = _HEADER.pack(*fields, 0, self.src, self.dst) + opts
        return head[:10] + checksum(head).to_bytes(2, "big") + head[12:]

    def encode(self) -> bytes:
        return self.header() + self.payload


def simple_header(
    src: bytes, dst: bytes, proto: int, length: int, *, ident: int, df: bool, ttl: int = 64
) -> bytes:
    """The 20-byte header of an unfragmented packet with ``length`` bytes of payload
    and no options: what :meth:`Ipv4Packet.header` gives, on the send fast path."""
    head = _HEADER.pack(0x45, 0, 20 + length, ident, FLAG_DF if df else 0, ttl, proto, 0, src, dst)
    return head[:10] + checksum(head).to_bytes(2, "big") + head[12:]


def fragment(packet: Ipv4Packet, mtu: int) -> list[bytes]:
    """``packet`` encoded as packets of at most ``mtu`` bytes (one if it fits).

    Raises ValueError if it does not fit and has the don't-fragment flag.
    """
    if 20 + len(packet.options) + len(packet.payload) <= mtu:
        return [packet.encode()]
    if packet.dont_fragment:
        raise ValueError(f"{len(packet.payload)} bytes with DF set do not fit MTU {mtu}")
    step = (mtu - 20) // 8 * 8
    if step <= 0:
        raise ValueError(f"MTU {mtu} is too small to fragment into")
    out = []
    data = packet.payload
    for start in range(0, len(data), step):
        chunk = data[start : start + step]
        last = start + step >= len(data)
        piece = Ipv4Packet(
            packet.src,
            packet.dst,
            packet.proto,
            chunk,
            packet.ttl,
            packet.ident,
            False,
            packet.more_fragments or not last,
            packet.offset + start,
            packet.tos,
        )
        out.append(piece.encode())
    return out


@dataclass(slots=True)
class _Partial:
    """A datagram being reassembled: its fragments by offset, its length once known."""

    started: float
    pieces: dict[int, bytes] = field(default_factory=dict)
    total: int | None = None
    first: Ipv4Packet | None = None


@dataclass(slots=True)
class ReassemblyStats:
    """Counters of the fragment reassembler."""

    completed: int = 0
    overlaps: int = 0
    expired: int = 0
    evicted: int = 0
    oversized: int = 0


class Reassembler:
    def __init__(
        self, *, max_datagrams: int = 64, max_fragments: int = 64, timeout: float = 30.0
    ) -> None:
        self.max_datagrams = max_datagrams
        self.max_fragments = max_fragments
        self.timeout = timeout
        self._partial: OrderedDict[tuple[bytes, bytes, int, int], _Partial] = OrderedDict()
        self.stats = ReassemblyStats()

    def __len__(self) -> int:
        return len(self._partial)

    def push(self, packet: Ipv4Packet, now: float) -> Ipv4Packet | None:
        """Take one packet; a whole one (or a completed datagram) comes back."""
        if not packet.is_fragment:
            return packet
        self.expire(now)
        key = (packet.src, packet.dst, packet.proto, packet.ident)
        part = self._partial.get(key)
        if part is None:
            while len(self._partial) >= self.max_datagrams:
                self._partial.popitem(last=False)
                self.stats.evicted += 1
            part = self._partial[key] = _Partial(now)
        start, end = packet.offset, packet.offset + len(packet.payload)
        if end > 65535 - 20 or (packet.more_fragments and len(packet.payload) % 8):
            self._drop(key)
            self.stats.oversized += 1
            return None
        for other_start, other in part.pieces.items():
            if start < other_start + len(other) and other_start < end:
                if other_start == start and other == packet.payload:
                    return None  # an exact duplicate: harmless
                self._drop(key)
                self.stats.overlaps += 1
                return None
        if (part.total is not None and end > part.total) or (
            not packet.more_fragments
            and (part.total is not None or any(s + len(p) > end for s, p in part.pieces.items()))
        ):
            self._drop(key)
            self.stats.overlaps += 1
            return None
        part.pieces[start] = packet.payload
        if start == 0:
            part.first = packet
        if not packet.more_fragments:
            part.total = end
        if len(part.pieces) > self.max_fragments:
            self._drop(key)
            self.stats.oversized += 1
            return None
        if part.total is None or part.first is None:
            return None
        have = sum(len(p) for p in part.pieces.values())
        if have != part.total:
            return None
        del self._partial[key]
        self.stats.completed += 1
        data = b"".join(part.pieces[s] for s in sorted(part.pieces))
        f = part.first
        return Ipv4Packet(f.src, f.dst, f.proto, data, f.ttl, f.ident, f.dont_fragment, tos=f.tos)

    def _drop(self, key: tuple[bytes, bytes, int, int]) -> None:
        self._partial.pop(key, None)

    def get_timer(self) -> float | None:
        if not self._partial:
            return None
        return min(p.started for p in self._partial.values()) + self.timeout

    def expire(self, now: float) -> None:
        for key in [k for k, p in self._partial.items() if now - p.started >= self.timeout]:
            del self._partial[key]
            self.stats.expired += 1
