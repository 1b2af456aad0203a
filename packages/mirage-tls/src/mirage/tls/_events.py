"""Events that :meth:`TlsConnection.next_event` returns."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from ._tickets import Session

__all__ = [
    "ConnectionClosed",
    "DataReceived",
    "EarlyDataReceived",
    "Event",
    "HandshakeComplete",
    "KeysUpdated",
    "SessionTicket",
]


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The handshake finished; what was negotiated."""

    version: int
    cipher_suite: int
    group: int | None
    alpn_protocol: bytes | None
    server_name: str | None
    peer_certificates: tuple[x509.Certificate, ...]
    signature_scheme: int | None
    hello_retry: bool
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class SessionTicket:
    """A client got a ticket: pass ``session`` to a later connection to resume."""

    session: Session


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Application data arrived from the peer."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EarlyDataReceived:
    """0-RTT data a server accepted: it may be a replay within the limits of the
    server's anti-replay; act on it only where that is harmless."""

    data: bytes


@dataclass(frozen=True, slots=True)
class KeysUpdated:
    """The peer moved to new traffic keys (a KeyUpdate arrived)."""

    requested: bool


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer sent close_notify: it will send nothing more (we still may)."""


Event = (
    HandshakeComplete
    | DataReceived
    | EarlyDataReceived
    | KeysUpdated
    | ConnectionClosed
    | SessionTicket
)
