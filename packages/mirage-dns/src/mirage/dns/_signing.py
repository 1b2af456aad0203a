"""Signing served zones, and the DNSSEC parts of authoritative answers (RFC 4035 3.1).

:func:`sign_zone` signs a zone with :class:`~mirage.dns._dnssec.SigningKey` s: it adds
the DNSKEY RRset, an NSEC chain (or an NSEC3 chain, RFC 5155, with opt-out when the
parameters' flags ask for it: unsigned delegations left out) and an
RRSIG over every authoritative RRset (the DNSKEY RRset by the keys with the SEP flag,
the rest by the others; by all keys when one kind is missing). The server does this
when it loads a zone and again after every UPDATE, so answers carry fresh signatures
without a signed zone file.

:func:`add_dnssec` completes an answer from a signed zone (signed here or pre-signed by
any signer) for a query with the DO bit: RRSIGs beside every RRset, and the NSEC or
NSEC3 records proving NXDOMAIN, NODATA, wildcard expansion and unsigned delegations.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._consts import Rcode, RRType
from ._dnssec import SEP, SigningKey, canonical_order, nsec3_hash, sign_rrset
from ._message import RR
from ._name import Name
from ._rdata import DNSKEY, NSEC, NSEC3, NSEC3PARAM, RRSIG, SOA

if TYPE_CHECKING:
    from ._zone import Lookup, Zone

__all__ = ["sign_zone", "add_dnssec", "ZoneSigner"]

Key = tuple[bytes, ...]
_DNSSEC_TYPES = (RRType.RRSIG, RRType.NSEC, RRType.NSEC3, RRType.NSEC3PARAM)
DAY = 86400


def sign_zone(
    zone: Zone,
    keys: Sequence[SigningKey],
    *,
    now: int,
    validity: int = 14 * DAY,
    nsec3: NSEC3PARAM | None = None,
    publish: Sequence[SigningKey] = (),
) -> Zone:
    """A copy of ``zone`` signed with ``keys`` (valid from an hour before ``now``).

    ``publish``: keys put in the DNSKEY RRset without signing with them (a key being
    introduced or retired in a pre-publish rollover, RFC 6781 4.1.1.1).
    """
    from ._zone import Zone

    if not keys:
        raise ValueError("signing needs at least one key")
    origin = zone.origin
    soa = zone.soa
    assert isinstance(soa.rdata, SOA)
    neg_ttl = min(soa.ttl, soa.rdata.minimum)
    records = [rr for rr in zone.records() if rr.rtype not in _DNSSEC_TYPES
               and not (rr.rtype == RRType.DNSKEY and rr.name == origin)]  # fmt: skip
    published = list(keys) + [k for k in publish if k.dnskey not in {s.dnskey for s in keys}]
    records += [RR(origin, RRType.DNSKEY, soa.rclass, soa.ttl, k.dnskey) for k in published]
    ksks = [k for k in keys if k.dnskey.flags & SEP] or list(keys)
    zsks = [k for k in keys if not k.dnskey.flags & SEP] or list(keys)
    # what is authoritative: not below a zone cut (glue is not signed)
    cuts = {rr.name.key for rr in records if rr.rtype == RRType.NS and rr.name != origin}

    def below_cut(name: Name) -> bool:
        key = name.key
        return any(key[i:] in cuts for i in range(1, len(key) - len(origin.key)))

    sets: dict[Key, dict[int, list[RR]]] = {}
    for rr in records:
        if not below_cut(rr.name):
            sets.setdefault(rr.name.key, {}).setdefault(rr.rtype, []).append(rr)
    if nsec3 is not None:
        records += _nsec3_chain(origin, sets, nsec3, neg_ttl, soa.rclass)
        records.append(RR(origin, RRType.NSEC3PARAM, soa.rclass, 0, NSEC3PARAM(
            nsec3.algorithm, 0, nsec3.iterations, nsec3.salt)))  # fmt: skip
    else:
        records += _nsec_chain(sets, neg_ttl, soa.rclass)
    grouped: dict[tuple[Key, int], list[RR]] = {}
    for rr in records:
        if below_cut(rr.name):
            continue
        if rr.name.key in cuts and rr.rtype not in (RRType.DS, RRType.NSEC):
            continue  # the delegation's NS belongs to the child
        grouped.setdefault((rr.name.key, rr.rtype), []).append(rr)
    inception, expiration = now - 3600, now + validity
    for (_key, rtype), rrset in grouped.items():
        signers = ksks if rtype == RRType.DNSKEY else zsks
        for key in signers:
            records.append(sign_rrset(rrset, key, origin, inception, expiration))
    return Zone.from_records(records, origin)


def _nsec_chain(sets: dict[Key, dict[int, list[RR]]], ttl: int, rclass: int) -> list[RR]:
    owners = sorted((next(iter(s.values()))[0].name for s in sets.values()), key=canonical_order)
    out = []
    for i, owner in enumerate(owners):
        types = set(sets[owner.key]) | {RRType.RRSIG, RRType.NSEC}
        nxt = owners[(i + 1) % len(owners)]
        out.append(RR(owner, RRType.NSEC, rclass, ttl, NSEC(nxt, tuple(sorted(types)))))
    return out


def _b32(data: bytes) -> bytes:
    return base64.b32hexencode(data).lower().rstrip(b"=")


def _nsec3_chain(
    origin: Name, sets: dict[Key, dict[int, list[RR]]], param: NSEC3PARAM, ttl: int, rclass: int
) -> list[RR]:
    names: dict[Key, set[int]] = {}
    n = len(origin.key)
    opt_out = bool(param.flags & 1)
    for key, by_type in sets.items():
        types = set(by_type)
        if types & {RRType.NS} and key != origin.key and RRType.DS not in types:
            if opt_out:
                continue  # RFC 5155 6: an unsigned delegation left out of the chain
            # an unsigned delegation: NS only, no RRSIG
        elif types:
            types.add(RRType.RRSIG)
        names.setdefault(key, set()).update(types)
        for i in range(1, len(key) - n):
            names.setdefault(key[i:], set())  # empty non-terminals get NSEC3s too
    names[origin.key].add(RRType.NSEC3PARAM)
    hashed = sorted(
        (nsec3_hash(Name(key), param.salt, param.iterations), types) for key, types in names.items()
    )
    out = []
    flags = 1 if opt_out else 0
    for i, (digest, types) in enumerate(hashed):
        nxt = hashed[(i + 1) % len(hashed)][0]
        owner = Name((_b32(digest), *origin.labels))
        data = NSEC3(param.algorithm, flags, param.iterations, param.salt, nxt,
                     tuple(sorted(types)))  # fmt: skip
        out.append(RR(owner, RRType.NSEC3, rclass, ttl, data))
    return out


@dataclass(frozen=True)
class ZoneSigner:
    """How a server signs one of its zones: keys, NSEC3 or NSEC, signature lifetime,
    and keys published without signing.

    The server signs at load, after each UPDATE, and again once half the validity
    has passed (:meth:`due`). A pre-publish ZSK rollover (RFC 6781 4.1.1.1) is three
    :meth:`Authority.set_signer` calls: the new ZSK published; signing with it, the
    old one still published; the old one removed.
    """

    keys: tuple[SigningKey, ...]
    nsec3: NSEC3PARAM | None = None
    validity: int = 14 * DAY
    publish: tuple[SigningKey, ...] = ()
    """Keys in the DNSKEY RRset that do not sign (pre-published or retiring)."""

    def sign(self, zone: Zone, now: float) -> Zone:
        return sign_zone(zone, self.keys, now=int(now), validity=self.validity, nsec3=self.nsec3,
                         publish=self.publish)  # fmt: skip

    def due(self, signed_at: float, now: float) -> bool:
        return now - signed_at >= self.validity / 2


# -- answers ------------------------------------------------------------------------------


@dataclass
class _Index:
    """The NSEC owners (in canonical order) and NSEC3 hashes of a zone, for denial proofs."""

    nsec_keys: list[tuple[bytes, ...]]
    nsec_names: list[Name]
    nsec3: list[tuple[bytes, Name]]  # (hash, owner), sorted
    param: NSEC3 | None


_INDEX: dict[int, tuple[Zone, _Index]] = {}


def _index(zone: Zone) -> _Index:
    cached = _INDEX.get(id(zone))
    if cached is not None and cached[0] is zone:
        return cached[1]
    nsec_names: list[Name] = []
    nsec3: list[tuple[bytes, Name]] = []
    param: NSEC3 | None = None
    for sets in zone.rrsets.values():
        for rr in sets.get(RRType.NSEC, ()):
            nsec_names.append(rr.name)
        for rr in sets.get(RRType.NSEC3, ()):
            if isinstance(rr.rdata, NSEC3) and rr.name.labels:
                label = rr.name.labels[0].upper()
                digest = base64.b32hexdecode(label + b"=" * ((8 - len(label) % 8) % 8))
                nsec3.append((digest, rr.name))
                param = param or rr.rdata
    nsec_names.sort(key=canonical_order)
    nsec3.sort()
    index = _Index([canonical_order(n) for n in nsec_names], nsec_names, nsec3, param)
    if len(_INDEX) > 64:
        _INDEX.clear()
    _INDEX[id(zone)] = (zone, index)
    return index


def _with_sigs(zone: Zone, rrs: Iterable[RR], qname: Name | None = None) -> list[RR]:
    """The records followed by the RRSIGs of their RRsets (renamed for wildcards)."""
    out: list[RR] = []
    seen: set[tuple[Key, int]] = set()
    rrs = list(rrs)
    for rr in rrs:
        out.append(rr)
    for rr in rrs:
        if (rr.name.key, rr.rtype) in seen or rr.rtype == RRType.RRSIG:
            continue
        seen.add((rr.name.key, rr.rtype))
        sigs = _sigs_for(zone, rr.name, rr.rtype)
        if not sigs:  # synthesised from a wildcard: the wildcard's RRSIGs, renamed
            source = _wildcard_source(zone, rr.name)
            if source is not None:
                sigs = [RR(rr.name, s.rtype, s.rclass, s.ttl, s.rdata)
                        for s in _sigs_for(zone, source, rr.rtype)]  # fmt: skip
        out.extend(sigs)
    return out


def _sigs_for(zone: Zone, name: Name, rtype: int) -> list[RR]:
    sets = zone.rrsets.get(name.key)
    if not sets:
        return []
    return [s for s in sets.get(RRType.RRSIG, ())
            if isinstance(s.rdata, RRSIG) and s.rdata.type_covered == rtype]  # fmt: skip


def _closest_encloser(zone: Zone, name: Name) -> Name:
    key = name.key
    for i in range(len(key) - len(zone.origin.key) + 1):
        if key[i:] in zone.exists:
            return Name(key[i:])
    return zone.origin


def _wildcard_source(zone: Zone, name: Name) -> Name | None:
    if name.key in zone.exists:
        return None
    encloser = _closest_encloser(zone, name)
    wildcard = Name((b"*", *encloser.key))
    return wildcard if wildcard.key in zone.rrsets else None


def _nsec_at(zone: Zone, name: Name) -> list[RR]:
    sets = zone.rrsets.get(name.key)
    return _with_sigs(zone, sets.get(RRType.NSEC, ())) if sets else []


def _nsec_covering(zone: Zone, index: _Index, name: Name) -> list[RR]:
    if not index.nsec_names:
        return []
    i = bisect.bisect_left(index.nsec_keys, canonical_order(name))
    if i < len(index.nsec_keys) and index.nsec_keys[i] == canonical_order(name):
        return _nsec_at(zone, index.nsec_names[i])
    return _nsec_at(zone, index.nsec_names[i - 1])  # i == 0 wraps to the last one


def _nsec3_for(zone: Zone, index: _Index, name: Name) -> tuple[list[RR], bool]:
    """The NSEC3 matching or covering ``name`` (with its RRSIGs), and whether it matched."""
    assert index.param is not None
    digest = nsec3_hash(name, index.param.salt, index.param.iterations)
    hashes = [h for h, _ in index.nsec3]
    i = bisect.bisect_left(hashes, digest)
    if i < len(hashes) and hashes[i] == digest:
        return _nsec_at3(zone, index.nsec3[i][1]), True
    return _nsec_at3(zone, index.nsec3[i - 1][1]), False


def _nsec_at3(zone: Zone, owner: Name) -> list[RR]:
    sets = zone.rrsets.get(owner.key)
    return _with_sigs(zone, sets.get(RRType.NSEC3, ())) if sets else []


def _dedupe(rrs: list[RR]) -> list[RR]:
    out: list[RR] = []
    for rr in rrs:
        if rr not in out:
            out.append(rr)
    return out


def _denial(zone: Zone, qname: Name, kind: str) -> list[RR]:
    """Proof records: kind is "nxdomain", "nodata", "wildcard" (an expansion) or "ds"."""
    index = _index(zone)
    if index.param is None:
        if kind in ("nodata", "ds"):
            if qname.key in zone.rrsets and RRType.NSEC in zone.rrsets[qname.key]:
                return _nsec_at(zone, qname)
            out = _nsec_covering(zone, index, qname)  # an empty non-terminal or a wildcard
            source = _wildcard_source(zone, qname)
            if source is not None:
                out += _nsec_at(zone, source)
            return _dedupe(out)
        out = _nsec_covering(zone, index, qname)
        if kind == "nxdomain":
            encloser = _closest_encloser(zone, qname)
            out += _nsec_covering(zone, index, Name((b"*", *encloser.key)))
        return _dedupe(out)
    if not index.nsec3:
        return []
    if kind in ("nodata", "ds"):
        match, matched = _nsec3_for(zone, index, qname)
        if matched:
            return match
        source = _wildcard_source(zone, qname)
        encloser = _provable_encloser(zone, index, qname)
        out = _nsec3_for(zone, index, encloser)[0]
        out += _nsec3_for(zone, index, _next_closer(qname, encloser))[0]
        if source is not None:
            out += _nsec3_for(zone, index, source)[0]
        return _dedupe(out)
    encloser = _provable_encloser(zone, index, qname)
    next_closer = _next_closer(qname, encloser)
    if kind == "wildcard":
        return _nsec3_for(zone, index, next_closer)[0]
    out = _nsec3_for(zone, index, encloser)[0]
    out += _nsec3_for(zone, index, next_closer)[0]
    out += _nsec3_for(zone, index, Name((b"*", *encloser.key)))[0]
    return _dedupe(out)


def _provable_encloser(zone: Zone, index: _Index, qname: Name) -> Name:
    """The closest encloser of ``qname`` that has an NSEC3 (RFC 5155 7.2.1): with
    opt-out, names that exist only for unsigned delegations have none."""
    encloser = _closest_encloser(zone, qname)
    if index.param is None or not index.param.flags & 1:
        return encloser
    chain = index.nsec3
    while encloser != zone.origin and encloser.labels:
        digest = nsec3_hash(encloser, index.param.salt, index.param.iterations)
        i = bisect.bisect_left(chain, (digest,))
        if i < len(chain) and chain[i][0] == digest:
            return encloser
        encloser = encloser.parent()
    return encloser


def _next_closer(qname: Name, encloser: Name) -> Name:
    return Name(qname.labels[len(qname.labels) - len(encloser.labels) - 1 :])


def add_dnssec(zone: Zone, result: Lookup, qname: Name, qtype: int) -> Lookup:
    """``result`` for a DO query on a signed zone: RRSIGs and denial of existence."""
    from ._zone import Lookup

    answer = _with_sigs(zone, result.answer)
    authority: list[RR] = []
    # where the answer's CNAME chain ends: the name the negative part is about
    target = qname
    for rr in result.answer:
        data = rr.rdata
        if rr.rtype == RRType.CNAME and rr.name == target and hasattr(data, "target"):
            target = data.target
    if not target.is_subdomain(zone.origin):
        target = qname
    expanded = [rr for rr in result.answer if _wildcard_source(zone, rr.name) is not None]
    if not result.aa:  # a referral: DS and its RRSIGs, or proof that there is no DS
        ns = [rr for rr in result.authority if rr.rtype == RRType.NS]
        ds = [rr for rr in result.authority if rr.rtype == RRType.DS]
        authority = ns + (_with_sigs(zone, ds) if ds else _denial(zone, ns[0].name, "ds"))
        return Lookup(result.rcode, result.aa, tuple(answer), tuple(authority), result.additional)
    if result.rcode == Rcode.NXDOMAIN:
        authority = _with_sigs(zone, result.authority) + _denial(zone, target, "nxdomain")
    elif any(rr.rtype == RRType.SOA for rr in result.authority) and not (
        qtype == RRType.SOA and target == zone.origin
    ):
        authority = _with_sigs(zone, result.authority) + _denial(zone, target, "nodata")
    else:
        authority = _with_sigs(zone, result.authority)
        if expanded:
            authority += _denial(zone, expanded[0].name, "wildcard")
    return Lookup(result.rcode, result.aa, tuple(answer), tuple(_dedupe(authority)),
                  result.additional)  # fmt: skip


def signing_keys_from(records: Iterable[RR]) -> list[DNSKEY]:
    return [rr.rdata for rr in records if isinstance(rr.rdata, DNSKEY)]
