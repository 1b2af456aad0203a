"""Zone deltas and the journal of SOA serial changes (IXFR, RFC 1995).

A :class:`Delta` is what changed between two versions of a zone: the old SOA, the
records removed, the new SOA, the records added (the SOAs themselves not among them).
:func:`diff` computes one, :func:`apply_delta` replays one onto the old zone (checking
the serial). A :class:`Journal` keeps a bounded chain of deltas per zone and answers
"what changed since serial N" (:meth:`Journal.since`), which is what an IXFR needs.

The journal has a text form (:meth:`Journal.to_text`, :func:`parse_journal`): each
delta is a ``;; delta OLD NEW`` line, then ``-`` and ``+`` lines, each a record in
master format with absolute names, so a server can append deltas to a file and replay
them at start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._consts import RRType
from ._errors import ZoneError
from ._message import RR
from ._rdata import SOA
from ._zone import Zone
from ._zonefile import parse_zone

__all__ = ["Delta", "Journal", "diff", "apply_delta", "parse_journal"]

_Key = tuple[tuple[bytes, ...], int, int, int, object]


def _key(rr: RR) -> _Key:
    return (rr.name.key, rr.rtype, rr.rclass, rr.ttl, rr.rdata)


def _serial(rr: RR) -> int:
    assert isinstance(rr.rdata, SOA)
    return rr.rdata.serial


@dataclass(frozen=True, slots=True)
class Delta:
    """One change of a zone, as IXFR sends it: old SOA, records removed, new SOA, records added."""

    old_soa: RR
    removed: tuple[RR, ...]
    new_soa: RR
    added: tuple[RR, ...]

    @property
    def old_serial(self) -> int:
        return _serial(self.old_soa)

    @property
    def new_serial(self) -> int:
        return _serial(self.new_soa)

    def records(self) -> list[RR]:
        """The delta as it appears inside an IXFR answer (RFC 1995 section 4)."""
        return [self.old_soa, *self.removed, self.new_soa, *self.added]

    def to_text(self) -> str:
        lines = [f";; delta {self.old_serial} {self.new_serial}"]
        lines += [f"-{rr.to_text()}" for rr in (self.old_soa, *self.removed)]
        lines += [f"+{rr.to_text()}" for rr in (self.new_soa, *self.added)]
        return "\n".join(lines) + "\n"


def _body(zone: Zone) -> list[RR]:
    return [rr for rr in zone.records() if not (rr.rtype == RRType.SOA and rr.name == zone.origin)]


def diff(old: Zone, new: Zone) -> Delta:
    """The delta that turns ``old`` into ``new`` (same origin)."""
    before = {_key(rr): rr for rr in _body(old)}
    after = {_key(rr): rr for rr in _body(new)}
    removed = tuple(rr for k, rr in before.items() if k not in after)
    added = tuple(rr for k, rr in after.items() if k not in before)
    return Delta(old.soa, removed, new.soa, added)


def apply_delta(zone: Zone, delta: Delta) -> Zone:
    """``zone`` with ``delta`` applied; raises :class:`ZoneError` if it does not fit."""
    source = f"IXFR delta {delta.old_serial}->{delta.new_serial}"
    if _serial(zone.soa) != delta.old_serial:
        raise ZoneError(source, 0, f"the zone has serial {_serial(zone.soa)}")
    records = {_key(rr): rr for rr in _body(zone)}
    for rr in delta.removed:
        if records.pop(_key(rr), None) is None:
            raise ZoneError(source, 0, f"removes {rr.to_text()}, which is not in the zone")
    for rr in delta.added:
        records[_key(rr)] = rr
    return Zone.from_records([delta.new_soa, *records.values()], zone.origin, source=source)


class Journal:
    """The last ``max_deltas`` changes of one zone, oldest first."""

    def __init__(self, deltas: Iterable[Delta] = (), max_deltas: int = 200) -> None:
        self.max_deltas = max_deltas
        self.deltas: list[Delta] = []
        for delta in deltas:
            self.record(delta)

    def record(self, delta: Delta) -> None:
        if self.deltas and self.deltas[-1].new_serial != delta.old_serial:
            self.deltas.clear()  # a gap: the older history no longer leads here
        if delta.old_serial == delta.new_serial:
            return
        self.deltas.append(delta)
        del self.deltas[: max(0, len(self.deltas) - self.max_deltas)]

    def since(self, serial: int) -> list[Delta] | None:
        """The deltas from ``serial`` to the newest, or None if the journal lacks them."""
        for i, delta in enumerate(self.deltas):
            if delta.old_serial == serial:
                return self.deltas[i:]
        return None

    def to_text(self) -> str:
        return "".join(delta.to_text() for delta in self.deltas)


def parse_journal(text: str, filename: str = "<journal>") -> list[Delta]:
    """Deltas from the text form (see the module doc)."""
    deltas: list[Delta] = []
    minus: list[RR] = []
    plus: list[RR] = []
    in_delta = False

    def finish(line_no: int) -> None:
        if not in_delta:
            return
        if not minus or not plus or minus[0].rtype != RRType.SOA or plus[0].rtype != RRType.SOA:
            raise ZoneError(filename, line_no, "a delta needs the old and the new SOA")
        deltas.append(Delta(minus[0], tuple(minus[1:]), plus[0], tuple(plus[1:])))

    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(";; delta"):
            finish(number)
            minus, plus, in_delta = [], [], True
            continue
        if not line.strip() or line.startswith(";"):
            continue
        if line[0] not in "+-" or not in_delta:
            raise ZoneError(filename, number, "expected a '+' or '-' record line")
        try:
            (rr,) = parse_zone(line[1:] + "\n", filename=filename)
        except ValueError as exc:
            raise ZoneError(filename, number, str(exc)) from None
        (minus if line[0] == "-" else plus).append(rr)
    finish(len(text.splitlines()))
    return deltas
