"""TLS 1.3 session tickets: what a client keeps, and the server's sealed tickets.

A server that has a ``ticket_key`` issues one NewSessionTicket after each full
handshake. The ticket is the server's state sealed with AES-256-GCM under that key
(stateless resumption): cipher suite, resumption PSK, issue time, age_add, lifetime,
server name and ALPN protocol. The client keeps a :class:`Session` and passes it to a
new connection to resume with a PSK (psk_dhe_ke only: every resumption still runs an
(EC)DHE exchange). 0-RTT is not offered by our client and is refused by our server.

TLS 1.2 uses the same sealed tickets (RFC 5077): the state is the master secret, and
a resumed session is an abbreviated handshake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._buffer import Reader, Writer
from ._errors import DecodeError

__all__ = ["ReplayCache", "Session", "TicketContents", "open_ticket", "seal_ticket"]

_AAD = b"mirage-tls ticket v1"


@dataclass(frozen=True, slots=True)
class Session:
    """A resumable TLS 1.3 session, as a client keeps it."""

    server_name: str | None
    cipher_suite: int
    psk: bytes
    ticket: bytes
    age_add: int
    lifetime: int
    received_at: float
    alpn_protocol: bytes | None
    peer_certificates: tuple[x509.Certificate, ...] = ()
    version: int = 0x0304  # for TLS 1.2 (0x0303), ``psk`` is the master secret
    max_early_data: int = 0  # what the server would accept as 0-RTT (we send none)

    def valid_at(self, now: float) -> bool:
        return 0 <= now - self.received_at < self.lifetime

    def obfuscated_age(self, now: float) -> int:
        return (int(max(0.0, now - self.received_at) * 1000) + self.age_add) % (1 << 32)


@dataclass(frozen=True, slots=True)
class TicketContents:
    """The session state a server seals into a ticket."""

    version: int
    cipher_suite: int
    psk: bytes
    issued_at: float
    age_add: int
    lifetime: int
    server_name: str | None
    alpn_protocol: bytes | None


def seal_ticket(key: bytes, contents: TicketContents) -> bytes:
    w = Writer()
    w.u16(contents.version)
    w.u16(contents.cipher_suite)
    w.opaque(1, contents.psk)
    w.uint(8, int(contents.issued_at * 1000))
    w.uint(4, contents.age_add)
    w.uint(4, contents.lifetime)
    w.opaque(2, (contents.server_name or "").encode())
    w.opaque(1, contents.alpn_protocol or b"")
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, w.getvalue(), _AAD)


def open_ticket(key: bytes, ticket: bytes) -> TicketContents | None:
    """The contents, or None for a ticket that is not ours or is damaged."""
    if len(ticket) < 12 + 16:
        return None
    try:
        plain = AESGCM(key).decrypt(ticket[:12], ticket[12:], _AAD)
    except InvalidTag:
        return None
    try:
        r = Reader(plain)
        version = r.u16()
        suite = r.u16()
        psk = r.opaque(1, 1)
        issued = r.uint(8) / 1000
        age_add = r.uint(4)
        lifetime = r.uint(4)
        name = r.opaque(2).decode() or None
        alpn = r.opaque(1) or None
        r.finish()
    except (DecodeError, UnicodeDecodeError):
        return None
    return TicketContents(version, suite, psk, issued, age_add, lifetime, name, alpn)


class ReplayCache:
    """Anti-replay for 0-RTT (RFC 8446 8.1, single-use tickets): early data is
    accepted on a ticket once while the ticket is valid, so a replayed ClientHello
    (and any reuse of the ticket) gets a 1-RTT handshake. One cache is shared by the
    connections of a server (put it in the server's ``TlsConfig``); it holds at most
    ``capacity`` tickets and refuses early data when full."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: dict[bytes, float] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, ticket: bytes, now: float, until: float) -> bool:
        """True the first time ``ticket`` is seen (it is then kept until ``until``)."""
        if len(self._seen) >= self.capacity:
            self._seen = {b: t for b, t in self._seen.items() if t > now}
        if ticket in self._seen and self._seen[ticket] > now:
            return False
        if len(self._seen) >= self.capacity:
            return False
        self._seen[ticket] = until
        return True
