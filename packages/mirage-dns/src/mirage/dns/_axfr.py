"""A sans-IO AXFR client (RFC 5936): the records of a zone from a primary.

Theory of operation. :class:`AxfrReader` builds the query (:attr:`query`, to send as
one length-prefixed TCP message); the caller feeds each response message to
:meth:`receive` until it returns ``True``. The first record must be the zone's SOA and
the transfer ends at the next SOA with the same serial; every message must carry the
query's id and rcode NOERROR. :attr:`records` then holds the zone without the closing
SOA. Any violation raises :class:`DnsDecodeError` (a bad message) or
:class:`ResolveError` (a refusal or an inconsistent transfer).
"""

from __future__ import annotations

from ._consts import Rcode, RRType
from ._errors import ResolveError
from ._message import RR, make_query, pull_message, push_message
from ._name import Name
from ._rdata import SOA

__all__ = ["AxfrReader"]


class AxfrReader:
    def __init__(self, origin: Name, *, ident: int) -> None:
        self.origin = origin
        self.ident = ident
        self.query = push_message(make_query(origin, RRType.AXFR, ident=ident, rd=False))
        self.records: list[RR] = []
        self.done = False
        self._serial: int | None = None

    def receive(self, data: bytes) -> bool:
        """One response message; ``True`` when the transfer is complete."""
        if self.done:
            raise ResolveError("AXFR message after the end of the transfer")
        msg = pull_message(data)
        if msg.id != self.ident or not msg.qr:
            raise ResolveError("AXFR response with another id")
        if msg.rcode != Rcode.NOERROR:
            raise ResolveError(
                f"AXFR of {self.origin} refused (rcode {msg.rcode})", rcode=msg.rcode
            )
        for rr in msg.answer:
            if self._serial is None:
                if rr.rtype != RRType.SOA or rr.name != self.origin:
                    raise ResolveError("AXFR does not start with the zone's SOA")
                assert isinstance(rr.rdata, SOA)
                self._serial = rr.rdata.serial
                self.records.append(rr)
                continue
            if self.done:
                raise ResolveError("records after the closing SOA")
            if rr.rtype == RRType.SOA and rr.name == self.origin:
                assert isinstance(rr.rdata, SOA)
                if rr.rdata.serial != self._serial:
                    raise ResolveError("the zone changed during the transfer")
                self.done = True
                continue
            if not rr.name.is_subdomain(self.origin):
                raise ResolveError(f"AXFR record {rr.name} outside {self.origin}")
            self.records.append(rr)
        return self.done
