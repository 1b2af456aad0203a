"""The block-device ring protocol (``xen/include/public/io/blkif.h``, x86_64 ABI).

A request is 112 bytes: ``operation`` u8, ``nr_segments`` u8, ``handle`` u16, 4
bytes of padding, ``id`` u64, ``sector_number`` u64 (512-byte units), then 11
segments of 8 bytes: ``gref`` u32, ``first_sect`` u8, ``last_sect`` u8 (the 512-byte
sectors used within the granted page, 0 to 7), 2 bytes of padding. A response is 16
bytes: ``id`` u64, ``operation`` u8, padding, ``status`` i16.

:func:`pull_request` and :func:`pull_response` are total: any bytes give a message
or :class:`BlkifDecodeError`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "BlkifDecodeError",
    "MAX_SEGMENTS",
    "Op",
    "REQUEST_SIZE",
    "RESPONSE_SIZE",
    "Request",
    "Response",
    "SECTOR",
    "Segment",
    "Status",
    "pull_request",
    "pull_response",
    "push_request",
    "push_response",
]

SECTOR = 512
SECTORS_PER_PAGE = 8
MAX_SEGMENTS = 11
_HEAD = struct.Struct("<BBH4xQQ")
_SEG = struct.Struct("<IBB2x")
_RSP = struct.Struct("<QBxh4x")
REQUEST_SIZE = _HEAD.size + MAX_SEGMENTS * _SEG.size
RESPONSE_SIZE = _RSP.size
VDISK_READONLY = 4


class Op(enum.IntEnum):
    READ = 0
    WRITE = 1
    WRITE_BARRIER = 2
    FLUSH_DISKCACHE = 3
    DISCARD = 5
    INDIRECT = 6


class Status(enum.IntEnum):
    OKAY = 0
    ERROR = -1
    EOPNOTSUPP = -2


class BlkifDecodeError(ValueError):
    """Bytes that are no blkif request or response."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A segment of a block request: a granted page and the sectors in it."""

    gref: int
    first_sect: int
    last_sect: int

    @property
    def sectors(self) -> int:
        return self.last_sect - self.first_sect + 1


@dataclass(frozen=True, slots=True)
class Request:
    """A block request: operation, device handle, id, first sector and segments."""

    operation: int
    handle: int
    id: int
    sector_number: int
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True, slots=True)
class Response:
    """The response to a block request: its id, operation and status."""

    id: int
    operation: int
    status: int


def push_request(req: Request) -> bytes:
    if len(req.segments) > MAX_SEGMENTS:
        raise ValueError(f"at most {MAX_SEGMENTS} segments")
    out = bytearray(REQUEST_SIZE)
    _HEAD.pack_into(out, 0, req.operation, len(req.segments), req.handle, req.id, req.sector_number)
    for i, seg in enumerate(req.segments):
        _SEG.pack_into(out, _HEAD.size + i * _SEG.size, seg.gref, seg.first_sect, seg.last_sect)
    return bytes(out)


def pull_request(data: bytes) -> Request:
    if len(data) < REQUEST_SIZE:
        raise BlkifDecodeError("short request")
    op, nseg, handle, req_id, sector = _HEAD.unpack_from(data, 0)
    if nseg > MAX_SEGMENTS:
        raise BlkifDecodeError(f"{nseg} segments")
    segments = []
    for i in range(nseg):
        gref, first, last = _SEG.unpack_from(data, _HEAD.size + i * _SEG.size)
        if first > last or last >= SECTORS_PER_PAGE:
            raise BlkifDecodeError(f"segment sectors {first}..{last}")
        segments.append(Segment(gref, first, last))
    return Request(op, handle, req_id, sector, tuple(segments))


def push_response(rsp: Response) -> bytes:
    return _RSP.pack(rsp.id, rsp.operation, rsp.status)


def pull_response(data: bytes) -> Response:
    if len(data) < RESPONSE_SIZE:
        raise BlkifDecodeError("short response")
    return Response(*_RSP.unpack_from(data, 0))
