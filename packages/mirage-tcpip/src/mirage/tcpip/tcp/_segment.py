"""TCP segments (RFC 9293 section 3.1) and the options we use: MSS, window scale,
SACK-permitted, SACK blocks (parsed) and timestamps (RFC 7323).

``TcpSegment.decode`` verifies the checksum over the IPv4 pseudo-header. Unknown
options are skipped; a malformed option list is a decode error. Sequence and
acknowledgment numbers are kept as they are on the wire (32-bit).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, fields

from mirage.tcpip._errors import DecodeError
from mirage.tcpip.checksum import ones_sum, pseudo_header

__all__ = ["ACK", "FIN", "PSH", "PROTO_TCP", "RST", "SYN", "URG", "TcpSegment"]

PROTO_TCP = 6
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_HEADER = struct.Struct("!HHIIBBHHH")
_TS_ONLY = struct.Struct("!4sII")  # NOP, NOP, kind 8, length 10, TSval, TSecr
_TS_PREFIX = b"\x01\x01\x08\x0a"


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


@dataclass(frozen=True, slots=True)
class TcpSegment:
    """A TCP segment: ports, sequence numbers, flags, window, options and payload."""

    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes = b""
    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    timestamp: tuple[int, int] | None = None
    sack: tuple[tuple[int, int], ...] = ()
    urgent: int = 0

    @property
    def syn(self) -> bool:
        return bool(self.flags & SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & RST)

    @property
    def has_ack(self) -> bool:
        return bool(self.flags & ACK)

    @property
    def seq_len(self) -> int:
        """Length in sequence space: data, plus one each for SYN and FIN."""
        return len(self.payload) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)

    @classmethod
    def decode(cls, data: bytes, src: bytes, dst: bytes, *, verify: bool = True) -> TcpSegment:
        if len(data) < 20:
            raise DecodeError("tcp", "shorter than a header")
        sport, dport, seq, ack, off, flags, window, _, urgent = _HEADER.unpack_from(data)
        hlen = (off >> 4) * 4
        if hlen < 20 or hlen > len(data):
            raise DecodeError("tcp", f"data offset {hlen} does not fit {len(data)} bytes")
        # Summed in two parts (the pseudo-header has an even length), sparing a copy.
        if (
            verify
            and _fold(ones_sum(pseudo_header(src, dst, PROTO_TCP, len(data))) + ones_sum(data))
            != 0xFFFF
        ):
            raise DecodeError("tcp", "bad checksum")
        # The common cases first: no options, or timestamps alone.
        if not urgent and cls is TcpSegment:
            if hlen == 20:
                payload = bytes(data[20:])
                return fast_segment(
                    sport,
                    dport,
                    seq,
                    ack,
                    flags & 0x3F,
                    window=window,
                    payload=payload,
                    timestamp=None,
                )
            if hlen == 32 and data[20:24] == _TS_PREFIX:
                _, tsval, tsecr = _TS_ONLY.unpack_from(data, 20)
                payload = bytes(data[32:])
                return fast_segment(
                    sport,
                    dport,
                    seq,
                    ack,
                    flags & 0x3F,
                    window=window,
                    payload=payload,
                    timestamp=(tsval, tsecr),
                )
        mss = wscale = None
        sack_ok = False
        ts = None
        sack: list[tuple[int, int]] = []
        opts = data[20:hlen]
        i = 0
        while i < len(opts):
            kind = opts[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= len(opts):
                raise DecodeError("tcp", f"option {kind} without a length")
            length = opts[i + 1]
            if length < 2 or i + length > len(opts):
                raise DecodeError("tcp", f"option {kind} has length {length}")
            body = opts[i + 2 : i + length]
            if kind == 2 and length == 4:
                mss = int.from_bytes(body, "big")
            elif kind == 3 and length == 3:
                wscale = min(body[0], 14)
            elif kind == 4 and length == 2:
                sack_ok = True
            elif kind == 5 and (length - 2) % 8 == 0:
                for j in range(0, len(body), 8):
                    sack.append(
                        (
                            int.from_bytes(body[j : j + 4], "big"),
                            int.from_bytes(body[j + 4 : j + 8], "big"),
                        )
                    )
            elif kind == 8 and length == 10:
                ts = (int.from_bytes(body[:4], "big"), int.from_bytes(body[4:], "big"))
            elif kind in (2, 3, 4, 8):
                raise DecodeError("tcp", f"option {kind} has length {length}")
            i += length
        return cls(
            sport,
            dport,
            seq,
            ack,
            flags & 0x3F,
            window,
            bytes(data[hlen:]),
            mss,
            wscale,
            sack_ok,
            ts,
            tuple(sack),
            urgent,
        )

    def options(self) -> bytes:
        if self.mss is None and self.wscale is None and not self.sack_permitted and not self.sack:
            if self.timestamp is None:
                return b""
            return _TS_ONLY.pack(_TS_PREFIX, self.timestamp[0], self.timestamp[1])
        out = b""
        if self.mss is not None:
            out += b"\x02\x04" + self.mss.to_bytes(2, "big")
        if self.sack_permitted:
            out += b"\x04\x02"
        if self.timestamp is not None:
            out += (
                b"\x01\x01\x08\x0a"
                + self.timestamp[0].to_bytes(4, "big")
                + self.timestamp[1].to_bytes(4, "big")
            )
        if self.wscale is not None:
            out += b"\x01\x03\x03" + bytes((self.wscale,))
        if self.sack:
            out += b"\x01\x01\x05" + bytes((2 + 8 * len(self.sack),))
            for left, right in self.sack:
                out += left.to_bytes(4, "big") + right.to_bytes(4, "big")
        out += b"\0" * (-len(out) % 4)
        if len(out) > 40:
            raise ValueError(f"{len(out)} bytes of TCP options do not fit in 40")
        return out

    def encode(self, src: bytes, dst: bytes) -> bytes:
        opts = self.options()
        hlen = 20 + len(opts)
        payload = self.payload
        fields = (
            self.src_port,
            self.dst_port,
            self.seq & 0xFFFFFFFF,
            self.ack & 0xFFFFFFFF,
            (hlen // 4) << 4,
            self.flags,
            self.window,
        )
        # The sum in parts (pseudo-header and header have even lengths), then the
        # header packed again with the checksum: the payload is copied only once.
        total = ones_sum(
            pseudo_header(src, dst, PROTO_TCP, hlen + len(payload))
            + _HEADER.pack(*fields, 0, self.urgent)
            + opts
        )
        if payload:
            total = _fold(total + ones_sum(payload))
        csum = ~total & 0xFFFF
        return _HEADER.pack(*fields, csum, self.urgent) + opts + payload


_SETTERS: tuple[Callable[[TcpSegment, object], None], ...] = tuple(
    TcpSegment.__dict__[f.name].__set__ for f in fields(TcpSegment)
)
_new = object.__new__


def fast_segment(
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    *,
    window: int,
    payload: bytes,
    timestamp: tuple[int, int] | None,
    sack: tuple[tuple[int, int], ...] = (),
) -> TcpSegment:
    """``TcpSegment(src_port, dst_port, seq, ack, flags, window, payload,
    timestamp=timestamp, sack=sack)`` at half the cost, for the per-segment paths
    (decoding, and the segments a connection sends): the frozen dataclass's
    ``__init__`` sets its 13 fields through ``object.__setattr__`` one call at a
    time, this fills the slots through their descriptors."""
    seg = _new(TcpSegment)
    s = _SETTERS
    s[0](seg, src_port)
    s[1](seg, dst_port)
    s[2](seg, seq)
    s[3](seg, ack)
    s[4](seg, flags)
    s[5](seg, window)
    s[6](seg, payload)
    s[7](seg, None)
    s[8](seg, None)
    s[9](seg, False)
    s[10](seg, timestamp)
    s[11](seg, sack)
    s[12](seg, 0)
    return seg
