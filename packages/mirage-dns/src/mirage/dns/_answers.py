"""Precompiled answers of a zone (NSD-style), spliced into responses without decoding.

The common query (opcode QUERY, one question, no other records but an OPT without
options) gets its response from an :class:`AnswerTable` of the zone: for a name of
the zone and a type, the header flags, the section counts and the encoded sections
after the question. A response is then the query's id, those flags with the query's
RD and CD, the counts, the question bytes as the client sent them (0x20 case kept),
the precompiled sections and the OPT record.

The encoded sections only depend on the question's name through compression, and
compression in this package is case-insensitive: sections encoded for the lowercased
name are the bytes the general encoder writes for any spelling of it. Each entry is
made by the general path itself (:meth:`Zone.lookup` and :func:`push_message`) the
first time its (name, type) is asked, so the table agrees with it by construction;
it only holds entries for names the zone has (one NODATA entry per name for every
absent type, NXDOMAIN entries by the length of the missing part of the name), so its
size is bounded by the zone's, whatever is asked. A table belongs to one zone
object: a changed zone (UPDATE, IXFR, re-signing) gets a new, empty table.

Everything else (referrals, DNAME, wildcards, DNSSEC denial, truncation, EDNS
options such as cookies, TSIG, other opcodes) goes the general way.
"""

from __future__ import annotations

from ._consts import Rcode, RRType
from ._message import Message, Question, make_response, push_message
from ._name import Name
from ._zone import Zone

__all__ = ["AnswerTable", "Entry"]

Key = tuple[bytes, ...]
Entry = tuple[int, bytes, bytes, bytes]
"""(flags without RD and CD, counts without the OPT, counts with it, sections)."""

_NODATA_PROBE = 65534  # a private type: asks for "a type this name lacks"
_SKIP = frozenset((RRType.AXFR, RRType.IXFR))
_ADDRESS = (RRType.A, RRType.AAAA)


def wire_of(key: Key) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in key) + b"\x00"


def key_of(wire: bytes) -> Key:
    """The labels of a well-formed name in wire form (no pointers)."""
    labels = []
    pos = 0
    while wire[pos]:
        end = pos + 1 + wire[pos]
        labels.append(wire[pos + 1 : end])
        pos = end
    return tuple(labels)


class AnswerTable:
    """The precompiled answers of one zone, filled as names are asked."""

    __slots__ = ("_below_origin", "_nx_names", "dnssec", "key", "nodata", "nxdomain", "plain",
                 "zone")  # fmt: skip

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.key = zone.origin.key
        self.plain: dict[tuple[bytes, int], Entry] = {}
        """(lowercased name wire, type) -> entry."""
        self.dnssec: dict[tuple[bytes, int], Entry] = {}
        """The same for DO queries on a signed zone (positive answers only)."""
        self.nodata: dict[bytes, Entry | None] = {}
        self.nxdomain: dict[int, Entry] = {}
        self._below_origin = len(zone.origin.key)
        self._nx_names: frozenset[bytes] | None = None

    def _encode(self, labels: Key, qtype: int, dnssec_ok: bool) -> Entry:
        zone = self.zone
        question = Question(Name(labels), qtype)
        result = zone.lookup(question.name, qtype, dnssec_ok=dnssec_ok)
        query = Message(question=(question,))
        reply = make_response(
            query,
            aa=result.aa,
            rcode=result.rcode,
            answer=result.answer,
            authority=result.authority,
            additional=result.additional,
        )
        wire = push_message(reply)
        start = 12 + question.name.wire_length() + 4
        counts = wire[6:12]
        ar = int.from_bytes(counts[4:6], "big")
        with_opt = counts[:4] + (ar + 1).to_bytes(2, "big")
        return (wire[2] << 8 | wire[3], counts, with_opt, wire[start:])

    def _plain_name(self, key: Key) -> bool:
        """``key`` has data and is answered from its own RRsets: not at or below a
        zone cut, not below a DNAME."""
        zone = self.zone
        return (
            key in zone.rrsets
            and zone._cut_above(key) is None
            and not (zone.dnames and zone._dname_above(key) is not None)
        )

    def entry(self, qwire: bytes, qtype: int, dnssec_ok: bool) -> Entry | None:
        """The entry for the lowercased name ``qwire`` (in this zone) and ``qtype``,
        or None when the general path must answer."""
        signed = dnssec_ok and self.zone.signed
        table = self.dnssec if signed else self.plain
        try:
            return table[(qwire, qtype)]
        except KeyError:
            pass
        if qtype in _SKIP:
            return None
        key = key_of(qwire)
        zone = self.zone
        sets = zone.rrsets.get(key)
        if sets is None:
            return None if signed else self._nxdomain(qwire, key)
        if not self._plain_name(key):
            return None
        if qtype in sets or qtype == RRType.ANY or (RRType.CNAME in sets and qtype in _ADDRESS):
            found = self._encode(key, qtype, signed)
            table[(qwire, qtype)] = found
            return found
        if RRType.CNAME in sets or signed:
            return None  # depends on the type: the general path
        try:
            return self.nodata[qwire]
        except KeyError:
            made = None if _NODATA_PROBE in sets else self._encode(key, _NODATA_PROBE, False)
            self.nodata[qwire] = made
            return made

    def _nxdomain(self, qwire: bytes, key: Key) -> Entry | None:
        """NXDOMAIN for a name that is not in the zone, when no cut, DNAME or wildcard
        is involved; entries by the length of the part above the origin."""
        zone = self.zone
        if key in zone.exists:
            return None  # an empty non-terminal
        if zone._cut_above(key) is not None or (zone.dnames and zone._dname_above(key)):
            return None
        if zone._wildcard(key) is not None:
            return None
        # The template is encoded for a stand-in name: compression agrees with the
        # real name unless one of the suffixes of the name below the origin is also
        # a suffix of a name in the SOA record (then the general path answers).
        if self._nx_names is None:
            self._nx_names = self._soa_suffixes()
        depth = len(key) - self._below_origin
        pos = 0
        for _ in range(depth):
            if qwire[pos:] in self._nx_names:
                return None
            pos += 1 + qwire[pos]
        shift = pos
        found = self.nxdomain.get(shift)
        if found is None:
            filler = _filler(shift)
            if filler is None or any(wire_of(filler[i:] + zone.origin.key) in self._nx_names
                                     for i in range(len(filler))):  # fmt: skip
                return None
            found = self._encode(filler + zone.origin.key, _NODATA_PROBE, False)
            if found[0] & 0xF != Rcode.NXDOMAIN:
                return None
            self.nxdomain[shift] = found
        return found

    def _soa_suffixes(self) -> frozenset[bytes]:
        soa = self.zone.soa
        names = [soa.name.key]
        for attr in ("mname", "rname"):
            value = getattr(soa.rdata, attr, None)
            if isinstance(value, Name):
                names.append(value.key)
        n = self._below_origin
        out = set()
        for key in names:
            for i in range(len(key)):
                if len(key) - i > n:
                    out.add(wire_of(key[i:]))
        return frozenset(out)


def _filler(size: int) -> Key | None:
    """Labels taking ``size`` octets in wire form (a stand-in for the missing part)."""
    if size < 2:
        return None
    labels = []
    while size:
        take = min(size, 64)
        if size - take == 1:
            take -= 1
        labels.append(b"\x7f" * (take - 1))
        size -= take
    return tuple(labels)
