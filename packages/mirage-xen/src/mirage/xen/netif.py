"""The network-device ring protocol (``xen/include/public/io/netif.h``).

Two shared rings per device, each one page: on the *transmit* ring the frontend
asks the backend to send a frame it placed in a granted page; on the *receive* ring
it lends the backend empty granted pages, which the backend fills with received
frames ("rx-copy").

``netif_tx_request`` is 12 bytes: ``gref`` u32, ``offset`` u16, ``flags`` u16,
``id`` u16, ``size`` u16. ``netif_tx_response`` is 4: ``id`` u16, ``status`` i16.
``netif_rx_request`` is 8: ``id`` u16, padding, ``gref`` u32.
``netif_rx_response`` is 8: ``id`` u16, ``offset`` u16, ``flags`` u16, ``status``
i16 (the frame's length when positive, else an error). ``netif_extra_info`` (a
12-byte slot that follows a request flagged ``EXTRA_INFO``) is skipped, not decoded.

Decoders are total: any bytes give a message or :class:`NetifDecodeError`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "MAX_TX_SIZE",
    "NetifDecodeError",
    "RX_SLOT",
    "RxFlags",
    "RxRequest",
    "RxResponse",
    "Status",
    "TX_SLOT",
    "TxFlags",
    "TxRequest",
    "TxResponse",
    "pull_rx_request",
    "pull_rx_response",
    "pull_tx_request",
    "pull_tx_response",
    "push_rx_request",
    "push_rx_response",
    "push_tx_request",
    "push_tx_response",
]

_TX_REQ = struct.Struct("<IHHHH")
_TX_RSP = struct.Struct("<Hh")
_RX_REQ = struct.Struct("<H2xI")
_RX_RSP = struct.Struct("<HHHh")

# A slot holds the larger of a ring's request and response.
TX_SLOT = max(_TX_REQ.size, _TX_RSP.size)  # 12
RX_SLOT = max(_RX_REQ.size, _RX_RSP.size)  # 8
MAX_TX_SIZE = 0xFFFF  # XEN_NETIF_MAX_TX_SIZE


class TxFlags(enum.IntFlag):
    CSUM_BLANK = 1 << 0
    DATA_VALIDATED = 1 << 1
    MORE_DATA = 1 << 2
    EXTRA_INFO = 1 << 3


class RxFlags(enum.IntFlag):
    DATA_VALIDATED = 1 << 0
    CSUM_BLANK = 1 << 1
    MORE_DATA = 1 << 2
    EXTRA_INFO = 1 << 3
    GSO_PREFIX = 1 << 4


class Status(enum.IntEnum):
    """``NETIF_RSP_*``; a receive response's positive status is the frame length."""

    DROPPED = -2
    ERROR = -1
    OKAY = 0
    NULL = 1  # a response for an extra-info slot


class NetifDecodeError(ValueError):
    """Bytes that are no netif request or response."""


@dataclass(frozen=True, slots=True)
class TxRequest:
    """A transmit request: a frame (or part of one) in a granted page."""

    gref: int
    offset: int
    flags: int
    id: int
    size: int


@dataclass(frozen=True, slots=True)
class TxResponse:
    """The response to a transmit request: its id and status."""

    id: int
    status: int


@dataclass(frozen=True, slots=True)
class RxRequest:
    """A receive request: a granted page for the backend to fill."""

    id: int
    gref: int


@dataclass(frozen=True, slots=True)
class RxResponse:
    """The response to a receive request: frame offset, flags, and status (length or error)."""

    id: int
    offset: int
    flags: int
    status: int


def _need(data: bytes | memoryview, size: int, what: str) -> None:
    if len(data) < size:
        raise NetifDecodeError(f"short {what}: {len(data)} of {size} bytes")


def push_tx_request(req: TxRequest) -> bytes:
    return _TX_REQ.pack(req.gref, req.offset, req.flags, req.id, req.size)


def pull_tx_request(data: bytes | memoryview) -> TxRequest:
    _need(data, _TX_REQ.size, "tx request")
    return TxRequest(*_TX_REQ.unpack_from(data, 0))


def push_tx_response(rsp: TxResponse) -> bytes:
    return _TX_RSP.pack(rsp.id, rsp.status)


def pull_tx_response(data: bytes | memoryview) -> TxResponse:
    _need(data, _TX_RSP.size, "tx response")
    return TxResponse(*_TX_RSP.unpack_from(data, 0))


def push_rx_request(req: RxRequest) -> bytes:
    return _RX_REQ.pack(req.id, req.gref)


def pull_rx_request(data: bytes | memoryview) -> RxRequest:
    _need(data, _RX_REQ.size, "rx request")
    return RxRequest(*_RX_REQ.unpack_from(data, 0))


def push_rx_response(rsp: RxResponse) -> bytes:
    return _RX_RSP.pack(rsp.id, rsp.offset, rsp.flags, rsp.status)


def pull_rx_response(data: bytes | memoryview) -> RxResponse:
    _need(data, _RX_RSP.size, "rx response")
    return RxResponse(*_RX_RSP.unpack_from(data, 0))
