"""Dynamic UPDATE (RFC 2136) applied to a :class:`Zone`, sans-IO.

:func:`apply_update` checks the zone section, the prerequisites (section 3.2) and the
updates (section 3.4) of an UPDATE message against a zone and returns the rcode and,
when something changed, the new zone (its SOA serial increased, the zone checks of
:meth:`Zone.from_records` passed). Nothing changes unless every check passes.
"""

from __future__ import annotations

from dataclasses import replace

from ._consts import Class, Rcode, RRType
from ._errors import ZoneError
from ._message import RR, Message
from ._rdata import SOA, Unknown
from ._refresh import serial_newer
from ._zone import Zone

__all__ = ["apply_update"]

_META = {RRType.ANY, RRType.AXFR, RRType.IXFR, RRType.OPT, 250, 249, 253, 254}


def _empty(rr: RR) -> bool:
    return isinstance(rr.rdata, Unknown) and rr.rdata.data == b""


def _deletes(update: RR, record: RR, at_apex: bool) -> bool:
    """Whether the class-ANY ``update`` deletes ``record`` (apex SOA and NS stay)."""
    if record.name != update.name:
        return False
    if at_apex and record.rtype in (RRType.SOA, RRType.NS):
        return False
    return update.rtype in (RRType.ANY, record.rtype)


def apply_update(zone: Zone, msg: Message) -> tuple[int, Zone | None]:
    records = zone.records()
    names = {rr.name.key for rr in records}
    # 3.2: prerequisites
    required: dict[tuple[tuple[bytes, ...], int], set[object]] = {}
    for rr in msg.answer:
        if rr.ttl != 0 and rr.rclass != Class.IN:
            return Rcode.FORMERR, None
        if not rr.name.is_subdomain(zone.origin):
            return Rcode.NOTZONE, None
        present = [r for r in records if r.name == rr.name]
        if rr.rclass == Class.ANY:
            if not _empty(rr):
                return Rcode.FORMERR, None
            if rr.rtype == RRType.ANY:
                if rr.name.key not in names:
                    return Rcode.NXDOMAIN, None
            elif not any(r.rtype == rr.rtype for r in present):
                return Rcode.NXRRSET, None
        elif rr.rclass == Class.NONE:
            if not _empty(rr):
                return Rcode.FORMERR, None
            if rr.rtype == RRType.ANY:
                if rr.name.key in names:
                    return Rcode.YXDOMAIN, None
            elif any(r.rtype == rr.rtype for r in present):
                return Rcode.YXRRSET, None
        elif rr.rclass == Class.IN:
            required.setdefault((rr.name.key, rr.rtype), set()).add(rr.rdata)
        else:
            return Rcode.FORMERR, None
    for (key, rtype), wanted in required.items():
        have = {r.rdata for r in records if r.name.key == key and r.rtype == rtype}
        if have != wanted:
            return Rcode.NXRRSET, None
    # 3.4.1: prescan
    for rr in msg.authority:
        if not rr.name.is_subdomain(zone.origin):
            return Rcode.NOTZONE, None
        if rr.rclass == Class.IN:
            if rr.rtype in _META or _empty(rr):
                return Rcode.FORMERR, None
        elif rr.rclass == Class.ANY:
            if rr.ttl != 0 or not _empty(rr) or (rr.rtype in _META and rr.rtype != RRType.ANY):
                return Rcode.FORMERR, None
        elif rr.rclass == Class.NONE:
            if rr.ttl != 0 or rr.rtype in _META:
                return Rcode.FORMERR, None
        else:
            return Rcode.FORMERR, None
    # 3.4.2: updates, in order
    current = list(records)
    apex = zone.origin
    for rr in msg.authority:
        at_apex = rr.name == apex
        if rr.rclass == Class.IN:
            if rr.rtype == RRType.SOA:
                old = current[0].rdata
                if at_apex and isinstance(rr.rdata, SOA) and isinstance(old, SOA) \
                        and serial_newer(rr.rdata.serial, old.serial):  # fmt: skip
                    current[0] = rr
                continue
            names_rr = [r for r in current if r.name == rr.name]
            if any(r.rtype == RRType.CNAME for r in names_rr) != (rr.rtype == RRType.CNAME) \
                    and names_rr:  # fmt: skip
                continue  # CNAME and other data never mix (RFC 2136 3.4.2.2)
            same = [r for r in names_rr if r.rtype == rr.rtype]
            if rr.rtype == RRType.CNAME and same:
                current = [r for r in current if r not in same]
            elif any(r.rdata == rr.rdata for r in same):
                continue
            ttl = same[0].ttl if same and rr.rtype != RRType.CNAME else rr.ttl
            current.append(RR(rr.name, rr.rtype, Class.IN, ttl, rr.rdata))
        elif rr.rclass == Class.ANY:
            current = [r for r in current if not _deletes(rr, r, at_apex)]
        else:  # NONE: delete one record
            if rr.rtype == RRType.SOA:
                continue
            if at_apex and rr.rtype == RRType.NS:
                ns = [r for r in current if r.name == apex and r.rtype == RRType.NS]
                if len(ns) <= 1:
                    continue
            current = [
                r for r in current
                if not (r.name == rr.name and r.rtype == rr.rtype and r.rdata == rr.rdata)
            ]  # fmt: skip
    if current == records:
        return Rcode.NOERROR, None
    soa = current[0]
    if soa is records[0]:  # bump the serial unless the update set one
        assert isinstance(soa.rdata, SOA)
        new_soa = replace(soa.rdata, serial=(soa.rdata.serial + 1) & 0xFFFFFFFF)
        current[0] = RR(soa.name, soa.rtype, soa.rclass, soa.ttl, new_soa)
    try:
        return Rcode.NOERROR, Zone.from_records(current, zone.origin, source="UPDATE")
    except ZoneError:
        return Rcode.REFUSED, None
