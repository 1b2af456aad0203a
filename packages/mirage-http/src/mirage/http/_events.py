"""The events of an HTTP/1.1 exchange, as the sans-IO connection sees them.

Header names are lower-cased bytes; values are bytes with surrounding whitespace
removed. A request or response head is followed by zero or more :class:`Data`
events and one :class:`EndOfMessage`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "Headers",
    "InformationalResponse",
    "Request",
    "Response",
    "Sentinel",
    "NEED_DATA",
    "PAUSED",
    "get_header",
    "get_headers",
]

Headers = tuple[tuple[bytes, bytes], ...]


def get_headers(headers: Headers, name: bytes) -> list[bytes]:
    """Every value of the header ``name`` (lower-case), in order."""
    return [v for n, v in headers if n == name]


def get_header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of ``name``, or ``None``."""
    for n, v in headers:
        if n == name:
            return v
    return None


@dataclass(frozen=True, slots=True)
class Request:
    """A request head: method, target, headers and the HTTP version."""

    method: bytes
    target: bytes
    headers: Headers = ()
    http_version: bytes = b"1.1"


@dataclass(frozen=True, slots=True)
class InformationalResponse:
    """A 1xx answer sent before the final response (``100 Continue``)."""

    status: int
    headers: Headers = ()
    reason: bytes = b""
    http_version: bytes = b"1.1"


@dataclass(frozen=True, slots=True)
class Response:
    """A final response head: status, headers, reason phrase and the HTTP version."""

    status: int
    headers: Headers = ()
    reason: bytes = b""
    http_version: bytes = b"1.1"


@dataclass(frozen=True, slots=True)
class Data:
    """Some bytes of a message's body."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The end of a message's body, with its trailers (chunked bodies only)."""

    trailers: Headers = field(default=())


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side cleanly between messages."""


Event = Request | InformationalResponse | Response | Data | EndOfMessage | ConnectionClosed


class Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    """More bytes are needed before the next event."""
    PAUSED = "PAUSED"
    """The peer's message is complete; call ``start_next_cycle`` before the next one."""


NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED
