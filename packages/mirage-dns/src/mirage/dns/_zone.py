"""A zone in memory and the lookup of RFC 1034 section 4.3.2 over it.

A :class:`Zone` holds RRsets by owner (case-insensitive) and type, the set of names
that exist (owners and their ancestors up to the apex: empty non-terminals exist too),
and the delegation points. :meth:`Zone.lookup` returns a :class:`Lookup` with the rcode,
whether the answer is authoritative, and the three sections; it follows CNAMEs inside
the zone, synthesises from wildcards (RFC 4592), refers below zone cuts with glue, and
answers NXDOMAIN and NODATA with the SOA in the authority section (RFC 2308).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._consts import Rcode, RRType
from ._errors import ZoneError
from ._message import RR
from ._name import Name
from ._rdata import CNAME, DNAME, MX, NS, SOA, SRV, SVCB
from ._zonefile import no_gc

__all__ = ["Zone", "Lookup"]

Key = tuple[bytes, ...]
MAX_CHAIN = 16
_ADDRESS_TYPES = (RRType.A, RRType.AAAA)


@dataclass(frozen=True, slots=True)
class Lookup:
    """The result of a zone lookup: rcode, whether authoritative, and the three sections."""

    rcode: int
    aa: bool
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    additional: tuple[RR, ...] = ()


class Zone:
    """The records of one zone, checked when built (see :meth:`from_records`)."""

    def __init__(self, origin: Name, rrsets: dict[Key, dict[int, tuple[RR, ...]]]) -> None:
        self.origin = origin
        self.rrsets = rrsets
        apex = rrsets.get(origin.key, {})
        self.soa = apex[RRType.SOA][0]
        exists: set[Key] = set()
        dnames: set[Key] = set()
        cuts: set[Key] = set()
        n = len(origin.key)
        apex_key = origin.key
        ns, dname = int(RRType.NS), int(RRType.DNAME)
        for key, sets in rrsets.items():
            if key in exists:
                pass
            else:
                exists.add(key)
                for i in range(1, len(key) - n + 1):  # ancestors, up to one already seen
                    above = key[i:]
                    if above in exists:
                        break
                    exists.add(above)
            if ns in sets and key != apex_key:
                cuts.add(key)
            if dname in sets:
                dnames.add(key)
        self.exists = exists
        self.signed = RRType.RRSIG in apex
        self.dnames = dnames
        self.cuts = cuts

    @classmethod
    def from_records(
        cls, records: list[RR], origin: Name | None = None, *, source: str = "<zone>"
    ) -> Zone:
        """Build a zone, checking what RFC 1034/1035/2181 require.

        Checks: one SOA, at the apex; NS at the apex; all owners inside the zone;
        a CNAME alone at its name (RFC 1034 section 3.6.2, RRSIG and NSEC allowed);
        glue for name servers inside a delegated child. Raises :class:`ZoneError`.
        """
        with no_gc():
            return cls._build(records, origin, source)

    @classmethod
    def _build(cls, records: list[RR], origin: Name | None, source: str) -> Zone:
        soas = [rr for rr in records if rr.rtype == RRType.SOA]
        if len(soas) != 1:
            raise ZoneError(source, 0, f"zone needs exactly one SOA record, has {len(soas)}")
        if origin is None:
            origin = soas[0].name
        if soas[0].name != origin:
            raise ZoneError(source, 0, f"SOA owner {soas[0].name} is not the origin {origin}")
        # RRsets are tuples from the start; the few with more than one record grow
        # as lists (``growing``) and become tuples at the end
        grouped: dict[Key, dict[int, tuple[RR, ...]]] = {}
        growing: dict[tuple[Key, int], list[RR]] = {}
        okey = origin.key
        n = len(okey)
        for rr in records:
            key = rr.name.key
            if n and key[-n:] != okey:
                raise ZoneError(source, 0, f"{rr.name} is outside the zone {origin}")
            sets = grouped.get(key)
            if sets is None:
                grouped[key] = {rr.rtype: (rr,)}
                continue
            first = sets.get(rr.rtype)
            if first is None:
                sets[rr.rtype] = (rr,)
                continue
            rrset = growing.get((key, rr.rtype))
            if rrset is None:
                rrset = growing[(key, rr.rtype)] = list(first)
            record = rr
            if rrset[0].ttl != rr.ttl:  # one TTL per RRset (RFC 2181 5.2)
                record = RR(rr.name, rr.rtype, rr.rclass, rrset[0].ttl, rr.rdata)
            if all(x.rdata != record.rdata for x in rrset):
                rrset.append(record)
        for (key, rtype), rrset in growing.items():
            grouped[key][rtype] = tuple(rrset)
        if RRType.NS not in grouped.get(origin.key, {}):
            raise ZoneError(source, 0, f"no NS records at the apex {origin}")
        cname, allowed = int(RRType.CNAME), {RRType.CNAME, RRType.RRSIG, RRType.NSEC}
        for sets in grouped.values():
            if cname in sets:
                others = set(sets) - allowed
                name = sets[RRType.CNAME][0].name
                if others:
                    raise ZoneError(source, 0, f"{name} has a CNAME and other data")
                if len(sets[RRType.CNAME]) > 1:
                    raise ZoneError(source, 0, f"{name} has more than one CNAME")
        frozen = grouped
        zone = cls(origin, frozen)
        for cut in zone.cuts:
            for rr in zone.rrsets[cut][RRType.NS]:
                assert isinstance(rr.rdata, NS)
                target = rr.rdata.target
                if target.is_subdomain(Name(cut)) and not zone._addresses(target):
                    raise ZoneError(source, 0, f"delegation {rr.name} lacks glue for {target}")
        return zone

    def records(self) -> list[RR]:
        """Every record, SOA first (the order of an AXFR body)."""
        out = [self.soa]
        for sets in self.rrsets.values():
            for rtype, rrset in sets.items():
                if not (rtype == RRType.SOA and rrset[0].name == self.origin):
                    out.extend(rrset)
        return out

    def _addresses(self, name: Name) -> list[RR]:
        sets = self.rrsets.get(name.key)
        if not sets:
            return []
        return [rr for t in _ADDRESS_TYPES for rr in sets.get(t, ())]

    def _negative_soa(self) -> RR:
        soa = self.soa
        assert isinstance(soa.rdata, SOA)
        return RR(soa.name, soa.rtype, soa.rclass, min(soa.ttl, soa.rdata.minimum), soa.rdata)

    def _cut_above(self, key: Key) -> Key | None:
        """The highest zone cut at or above ``key`` (below the apex), if any."""
        if not self.cuts:
            return None
        n = len(self.origin.key)
        for i in range(len(key) - n - 1, -1, -1):
            candidate = key[i:]
            if candidate in self.cuts:
                return candidate
        return None

    def _additional(self, rrs: list[RR]) -> list[RR]:
        out: list[RR] = []
        seen: set[Key] = set()
        for rr in rrs:
            data = rr.rdata
            target: Name | None = None
            if isinstance(data, (NS, MX)):
                target = data.target if isinstance(data, NS) else data.exchange
            elif isinstance(data, (SRV, SVCB)):
                target = data.target
            if target is not None and target.key not in seen:
                seen.add(target.key)
                if target.is_subdomain(self.origin):
                    out.extend(self._addresses(target))
        return out

    def _referral(self, cut: Key, dnssec_ok: bool) -> Lookup:
        ns = list(self.rrsets[cut][RRType.NS])
        glue = self._additional(ns)
        # RFC 4035 3.1.4: DS in referrals when the zone is signed and DO is set
        ds = list(self.rrsets[cut].get(RRType.DS, ())) if dnssec_ok and self.signed else []
        return Lookup(Rcode.NOERROR, False, (), tuple(ns + ds), tuple(glue))

    def lookup(self, qname: Name, qtype: int, *, dnssec_ok: bool = False) -> Lookup:
        """Answer ``qname``/``qtype`` from this zone (``qname`` must be inside it).

        ``dnssec_ok`` (the DO bit) on a signed zone adds RRSIGs, the DS RRset to
        referrals, and NSEC or NSEC3 proofs to negative and wildcard answers.
        """
        result = self._lookup(qname, qtype, dnssec_ok)
        if dnssec_ok and self.signed:
            from ._signing import add_dnssec

            return add_dnssec(self, result, qname, qtype)
        return result

    def _lookup(self, qname: Name, qtype: int, dnssec_ok: bool) -> Lookup:
        answer: list[RR] = []
        name = qname
        for _ in range(MAX_CHAIN):
            key = name.key
            cut = self._cut_above(key)
            if cut is not None and not (cut == key and qtype == RRType.DS):
                if answer:  # a CNAME led below a cut: give what we have and the referral
                    ref = self._referral(cut, dnssec_ok)
                    return Lookup(Rcode.NOERROR, True, tuple(answer), ref.authority,
                                  ref.additional)  # fmt: skip
                return self._referral(cut, dnssec_ok)
            dname = self._dname_above(key) if self.dnames else None
            if dname is not None:  # RFC 6672: the DNAME and a CNAME synthesised from it
                rr = self.rrsets[dname][RRType.DNAME][0]
                assert isinstance(rr.rdata, DNAME)
                prefix = name.labels[: len(key) - len(dname)]
                target = Name(prefix + rr.rdata.target.labels)
                if target.wire_length() > 255:
                    return Lookup(Rcode.YXDOMAIN, True, (*answer, rr))
                answer += [rr, RR(name, RRType.CNAME, rr.rclass, rr.ttl, CNAME(target))]
                name = target
                if not name.is_subdomain(self.origin):
                    return Lookup(Rcode.NOERROR, True, tuple(answer))
                continue
            sets = self.rrsets.get(key)
            synthesised = False
            if sets is None and key not in self.exists:
                sets = self._wildcard(key)
                synthesised = sets is not None
                if sets is None:
                    rcode = Rcode.NXDOMAIN
                    return Lookup(rcode, True, tuple(answer), (self._negative_soa(),))
            if sets is None:  # an empty non-terminal
                return Lookup(Rcode.NOERROR, True, tuple(answer), (self._negative_soa(),))
            if synthesised:
                sets = {t: tuple(RR(name, rr.rtype, rr.rclass, rr.ttl, rr.rdata) for rr in s)
                        for t, s in sets.items()}  # fmt: skip
            if qtype == RRType.ANY:
                first = next(iter(sets))  # RFC 8482: one RRset suffices (as NSD, the first)
                answer.extend(sets[first])
                return Lookup(Rcode.NOERROR, True, tuple(answer))
            rrset = sets.get(qtype)
            if rrset is not None:
                answer.extend(rrset)
                extra = self._additional(list(rrset))
                return Lookup(Rcode.NOERROR, True, tuple(answer), (), tuple(extra))
            cname = sets.get(RRType.CNAME)
            if cname is not None:
                answer.extend(cname)
                data = cname[0].rdata
                assert isinstance(data, CNAME)
                name = data.target
                if not name.is_subdomain(self.origin) or any(
                    rr.rtype == RRType.CNAME and rr.name == name for rr in answer
                ):
                    return Lookup(Rcode.NOERROR, True, tuple(answer))
                continue
            return Lookup(Rcode.NOERROR, True, tuple(answer), (self._negative_soa(),))
        return Lookup(Rcode.NOERROR, True, tuple(answer))

    def _dname_above(self, key: Key) -> Key | None:
        """The highest DNAME owner strictly above ``key``, if any."""
        n = len(self.origin.key)
        for i in range(len(key) - n, 0, -1):
            if key[i:] in self.dnames:
                return key[i:]
        return None

    def _wildcard(self, key: Key) -> dict[int, tuple[RR, ...]] | None:
        """RRsets of the source of synthesis for a name that does not exist."""
        n = len(self.origin.key)
        for i in range(1, len(key) - n + 1):
            encloser = key[i:]
            if encloser in self.exists:
                return self.rrsets.get((b"*", *encloser))
        return None
