"""A sans-IO IXFR client (RFC 1995): the changes to a zone since the serial we have.

:class:`IxfrReader` builds the query (the question, and our SOA in the authority
section); the caller sends it as one length-prefixed TCP message and feeds each
response message to :meth:`IxfrReader.receive` until it returns ``True``. The answer
is one of three forms, told apart by its first two records:

- the server's SOA alone, not newer than ours: we are up to date;
- the new SOA, then our SOA: incremental, a sequence of deltas (old SOA, removed
  records, new SOA, added records), closed by the new SOA again;
- the new SOA, then anything else: a whole zone, as for AXFR.

:meth:`IxfrReader.apply` gives the resulting zone. Violations raise
:class:`ResolveError` (or :class:`DnsDecodeError` for bytes that do not decode).
"""

from __future__ import annotations

from ._consts import Rcode, RRType
from ._errors import ResolveError
from ._journal import Delta, apply_delta
from ._message import RR, Message, Question, pull_message, push_message
from ._rdata import SOA
from ._refresh import serial_newer
from ._zone import Zone

__all__ = ["IxfrReader"]


def _serial(rr: RR) -> int:
    assert isinstance(rr.rdata, SOA)
    return rr.rdata.serial


class IxfrReader:
    def __init__(self, zone: Zone, *, ident: int) -> None:
        self.zone = zone
        self.origin = zone.origin
        self.ident = ident
        self.ours = _serial(zone.soa)
        msg = Message(id=ident, question=(Question(zone.origin, RRType.IXFR),),
                      authority=(zone.soa,))  # fmt: skip
        self.query = push_message(msg)
        self.done = False
        self.mode: str | None = None
        """"uptodate", "incremental", "full" or "axfr" (do an AXFR) once known."""
        self.deltas: list[Delta] = []
        self.records: list[RR] = []
        self._new: RR | None = None
        self._old: RR | None = None
        self._removed: list[RR] = []
        self._new_soa: RR | None = None
        self._added: list[RR] = []

    def receive(self, data: bytes) -> bool:
        if self.done:
            raise ResolveError("IXFR message after the end of the transfer")
        msg = pull_message(data)
        if msg.id != self.ident or not msg.qr:
            raise ResolveError("IXFR response with another id")
        if msg.rcode != Rcode.NOERROR:
            raise ResolveError(f"IXFR of {self.origin} refused (rcode {msg.rcode})",
                               rcode=msg.rcode)  # fmt: skip
        for rr in msg.answer:
            if self.done:
                raise ResolveError("records after the end of the IXFR")
            self._record(rr)
        if self._new is not None and self.mode is None and len(msg.answer) == 1:
            # the SOA alone: nothing new, or (newer) "too much, ask for AXFR"
            newer = serial_newer(_serial(self._new), self.ours)
            self.mode, self.done = ("axfr" if newer else "uptodate"), True
        return self.done

    def _is_soa(self, rr: RR) -> bool:
        return rr.rtype == RRType.SOA and rr.name == self.origin and isinstance(rr.rdata, SOA)

    def _record(self, rr: RR) -> None:
        if not rr.name.is_subdomain(self.origin):
            raise ResolveError(f"IXFR record {rr.name} outside {self.origin}")
        if self._new is None:
            if not self._is_soa(rr):
                raise ResolveError("IXFR does not start with the zone's SOA")
            self._new = rr
            return
        final = _serial(self._new)
        if self.mode is None:
            if self._is_soa(rr) and _serial(rr) == self.ours and final != self.ours:
                self.mode, self._old = "incremental", rr
                return
            self.mode = "full"
            self.records = [self._new]
        if self.mode == "full":
            if self._is_soa(rr):
                if _serial(rr) != final:
                    raise ResolveError("the zone changed during the transfer")
                self.done = True
            else:
                self.records.append(rr)
            return
        # incremental: old SOA, removals, new SOA, additions, ...
        if not self._is_soa(rr):
            (self._added if self._new_soa is not None else self._removed).append(rr)
            return
        if self._new_soa is None:
            self._new_soa = rr
            return
        assert self._old is not None
        self.deltas.append(Delta(self._old, tuple(self._removed), self._new_soa,
                                 tuple(self._added)))  # fmt: skip
        if _serial(rr) == final and _serial(self._new_soa) == final:
            self.done = True
            return
        self._old, self._removed, self._new_soa, self._added = rr, [], None, []

    def apply(self) -> Zone:
        """The zone after the transfer (the same zone when it was up to date)."""
        if not self.done:
            raise ResolveError("the IXFR is not complete")
        if self.mode == "uptodate":
            return self.zone
        if self.mode == "axfr":
            raise ResolveError("the server asks for an AXFR instead")
        if self.mode == "full":
            return Zone.from_records(self.records, self.origin, source="IXFR (whole zone)")
        zone = self.zone
        for delta in self.deltas:
            try:
                zone = apply_delta(zone, delta)
            except Exception as exc:
                raise ResolveError(f"IXFR delta does not apply: {exc}") from None
        return zone
