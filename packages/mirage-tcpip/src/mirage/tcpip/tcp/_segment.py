"""TCP segments (RFC 9293 section 3.1) and the options we use: MSS, window scale,
SACK-permitted, SACK blocks (parsed) and timestamps (RFC 7323).

``TcpSegment.decode`` verifies the checksum over the IPv4 pseudo-header. Unknown
options are skipped; a malformed option list is a decode error. Sequence and
acknowledgment numbers are kept as they are on the wire (32-bit).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mirage.tcpip._errors import DecodeError
from mirage.tcpip.checksum import checksum, pseudo_header

__all__ = ["ACK", "FIN", "PSH", "PROTO_TCP", "RST", "SYN", "URG", "TcpSegment"]

PROTO_TCP = 6
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_HEADER = struct.Struct("!HHIIBBHHH")


@dataclass(frozen=True, slots=True)
class TcpSegment:
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
        if verify and checksum(pseudo_header(src, dst, PROTO_TCP, len(data)) + data):
            raise DecodeError("tcp", "bad checksum")
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
        head = _HEADER.pack(
            self.src_port,
            self.dst_port,
            self.seq & 0xFFFFFFFF,
            self.ack & 0xFFFFFFFF,
            (hlen // 4) << 4,
            self.flags,
            self.window,
            0,
            self.urgent,
        )
        segment = head + opts + self.payload
        csum = checksum(pseudo_header(src, dst, PROTO_TCP, len(segment)) + segment)
        return segment[:16] + csum.to_bytes(2, "big") + segment[18:]
