"""A sans-IO stub lookup: one question asked of a list of servers, with retries.

Theory of operation. A :class:`StubLookup` is created with ``now``; the caller then
loops: send every :class:`Transmit` that :meth:`StubLookup.transmit` returns (over UDP
or, when ``tcp`` is set, as one length-prefixed message on a new TCP connection),
feed responses to :meth:`receive`, and call :meth:`handle_timer` when
:meth:`get_timer` passes. When :attr:`done` is true, :attr:`result` holds the response
:class:`Message` or :attr:`error` a :class:`ResolveError`.

States: UDP to server *i* (attempt *k*) → on TC, TCP to the same server → on
timeout, SERVFAIL, REFUSED, NOTIMP or FORMERR, the next (server, attempt) pair →
done when a server answers NOERROR or NXDOMAIN, or when the pairs run out. Responses
whose id or question does not match the query are ignored (RFC 5452).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._consts import Rcode
from ._errors import DnsDecodeError, ResolveError
from ._message import Edns, Message, make_query, pull_message, push_message
from ._name import Name

__all__ = ["StubLookup", "Transmit"]


@dataclass(frozen=True, slots=True)
class Transmit:
    """A query to send: the server address, whether over TCP, and the message bytes."""

    server: tuple[str, int]
    tcp: bool
    data: bytes


class StubLookup:
    def __init__(
        self,
        name: Name,
        rtype: int,
        servers: list[tuple[str, int]],
        *,
        ident: int,
        now: float,
        timeout: float = 2.0,
        attempts: int = 2,
        payload: int = 1232,
        rd: bool = True,
        dnssec_ok: bool = False,
    ) -> None:
        if not servers:
            raise ValueError("a stub lookup needs at least one server")
        self.name = name
        self.rtype = rtype
        edns = Edns(payload=payload, dnssec_ok=dnssec_ok)
        self.query = make_query(name, rtype, ident=ident, rd=rd, edns=edns)
        self._wire = push_message(self.query)
        self._plan = [s for _ in range(attempts) for s in servers]
        self._step = -1
        self._tcp = False
        self._deadline: float | None = None
        self._pending: Transmit | None = None
        self.timeout = timeout
        self.done = False
        self.result: Message | None = None
        self.error: ResolveError | None = None
        self._last_rcode: int | None = None
        self._next(now, "")

    @property
    def ident(self) -> int:
        return self.query.id

    @property
    def server(self) -> tuple[str, int]:
        return self._plan[self._step]

    def _next(self, now: float, why: str) -> None:
        self._step += 1
        self._tcp = False
        if self._step >= len(self._plan):
            self._finish_error(f"no answer for {self.name} ({why})", self._last_rcode)
            return
        self._send(now)

    def _send(self, now: float) -> None:
        self._pending = Transmit(self.server, self._tcp, self._wire)
        self._deadline = now + self.timeout

    def _finish_error(self, message: str, rcode: int | None = None) -> None:
        self.done = True
        self._deadline = None
        self._pending = None
        self.error = ResolveError(message, rcode=rcode)

    def transmit(self) -> Transmit | None:
        pending, self._pending = self._pending, None
        return pending

    def get_timer(self) -> float | None:
        return None if self.done else self._deadline

    def handle_timer(self, now: float) -> None:
        if not self.done and self._deadline is not None and now >= self._deadline:
            self._next(now, "timed out")

    def receive(self, data: bytes, now: float, *, tcp: bool = False) -> None:
        """A response for this lookup (from the current server)."""
        if self.done or tcp != self._tcp:
            return
        try:
            msg = pull_message(data)
        except DnsDecodeError:
            return  # not an answer we can use; wait for the timer
        if not msg.qr or msg.id != self.query.id or msg.question != self.query.question:
            return
        if msg.tc and not tcp:
            self._tcp = True
            self._send(now)
            return
        if msg.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
            self.done = True
            self._deadline = None
            self.result = msg
            return
        self._last_rcode = msg.rcode
        self._next(
            now,
            f"rcode {msg.rcode}",
        )
