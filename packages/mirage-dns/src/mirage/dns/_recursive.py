"""A sans-IO iterative resolver that starts from root hints (RFC 1034 section 5.3.3).

Theory of operation. :class:`Recursion` answers one question by asking authoritative
servers, starting at the closest zone cut it knows (the root, from the hints, when
nothing better is cached) and following referrals down. The caller loops exactly as
for :class:`~mirage.dns._stub.StubLookup`: send what :meth:`Recursion.transmit`
returns, feed responses to :meth:`receive`, call :meth:`handle_timer` when
:meth:`get_timer` passes; when :attr:`done` is true, :attr:`result` is a response
:class:`Message` (rcode, the answer chain, and for a negative answer the SOA) or
:attr:`error` a :class:`ResolveError` (SERVFAIL).

Inside, the resolution is a generator that yields one question for one server at a
time and receives the response (or ``None`` after a timeout); each exchange is a
one-server :class:`StubLookup` with RD clear, so retries over TCP on truncation and
the id/question checks (RFC 5452) come from there.

What a response may teach is limited to the zone the server was asked about (its
bailiwick): answer records, NS records and glue whose owners lie outside it are
ignored, a referral must lead strictly below the zone and towards the name, and a
server that answers otherwise (lame, or a referral sideways or up) is skipped.
CNAMEs that leave the zone are followed from the closest cached zone cut for the new
name. Name servers without glue are resolved on the side, to a bounded depth and
never while they are being resolved already. Limits on the number of queries, on
referrals, on the CNAME chain and on that depth end every resolution.

Two caches persist across resolutions when shared: the answer :class:`Cache`
(positive and negative, RFC 2308) and the :class:`Delegations` map of zone cuts to
their name servers' addresses.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace

from ._cache import Cache
from ._consts import Rcode, RRType
from ._dnssec import (
    EDE_DNSKEY_MISSING,
    EDE_NSEC_MISSING,
    DnssecError,
    check_expansion,
    check_nodata,
    check_nxdomain,
    trusted_keys,
    verify_rrset,
)
from ._errors import ResolveError
from ._message import RR, Message, Question
from ._name import ROOT, Name
from ._rdata import AAAA, CNAME, DNSKEY, DS, NS, RRSIG, SOA, A
from ._stub import StubLookup, Transmit

__all__ = ["Recursion", "Delegations", "Delegation", "Limits"]

Key = tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one resolution (each guards against loops or amplification)."""

    queries: int = 64
    referrals: int = 24
    cname_chain: int = 12
    ns_depth: int = 3
    timeout: float = 2.0
    attempts: int = 2


@dataclass(slots=True)
class Delegation:
    """A zone cut: the zone, its name servers and the addresses known for them."""

    zone: Name
    nameservers: tuple[Name, ...]
    addresses: dict[Key, tuple[str, ...]] = field(default_factory=dict)
    expires: float = float("inf")


class Delegations:
    """Zone cuts learned from referrals, with expiry; the root comes from the hints."""

    def __init__(
        self,
        root_hints: Iterable[str],
        max_entries: int = 10000,
        *,
        trust_anchors: Iterable[RR] = (),
    ) -> None:
        self.anchors: dict[Key, list[DS | DNSKEY]] = {}
        """DS or DNSKEY records to trust, by zone: with any, answers are validated."""
        for rr in trust_anchors:
            if isinstance(rr.rdata, (DS, DNSKEY)):
                self.anchors.setdefault(rr.name.key, []).append(rr.rdata)
        self.zone_keys: dict[Key, tuple[list[DNSKEY] | None, float]] = {}
        """Validated keys of zones (None: provably insecure), with their expiry."""
        hints = tuple(root_hints)
        if not hints:
            raise ValueError("a recursive resolver needs at least one root server address")
        names = tuple(Name((f"hint{i}".encode(), b"invalid")) for i in range(len(hints)))
        self.root = Delegation(
            ROOT, names, {n.key: (a,) for n, a in zip(names, hints, strict=True)}
        )
        self.max_entries = max_entries
        self._cuts: dict[Key, Delegation] = {}

    def __len__(self) -> int:
        return len(self._cuts)

    def closest(self, name: Name, now: float) -> Delegation:
        key = name.key
        for i in range(len(key)):
            cut = self._cuts.get(key[i:])
            if cut is not None:
                if cut.expires > now:
                    return cut
                del self._cuts[key[i:]]
        return self.root

    def put(self, delegation: Delegation) -> None:
        if len(self._cuts) >= self.max_entries:
            self._cuts.clear()
        self._cuts[delegation.zone.key] = delegation


# What a response says about the question asked of a zone's server.
@dataclass(frozen=True, slots=True)
class _Answer:
    """An answer: the CNAME chain from the name asked, and whether it reaches the wanted RRset."""

    records: tuple[RR, ...]  # the in-bailiwick chain from the name asked (and RRSIGs)
    end: Name  # where the CNAME chain ends
    complete: bool  # the wanted RRset is at the end (or the type was CNAME)
    proof: tuple[RR, ...] = ()  # NSEC/NSEC3 (and RRSIGs) of the authority section
    zone: Name = ROOT


@dataclass(frozen=True, slots=True)
class _Negative:
    """A response that says the name or type does not exist (NXDOMAIN or NODATA)."""

    rcode: int
    records: tuple[RR, ...]
    soa: tuple[RR, ...]
    proof: tuple[RR, ...] = ()
    zone: Name = ROOT


@dataclass(frozen=True, slots=True)
class _Referral:
    """A response that refers the question to a child zone's servers."""

    delegation: Delegation


_LAME = None
_Outcome = _Answer | _Negative | _Referral | None
_Ask = tuple[Name, int, str]  # name, type, server address


def _chain(records: Iterable[RR], start: Name, rtype: int, limit: int) -> tuple[list[RR], Name]:
    """The CNAME chain from ``start`` in ``records`` and the name where it ends."""
    chain: list[RR] = []
    target = start
    for _ in range(limit):
        if rtype == RRType.CNAME:
            break
        cnames = [rr for rr in records if rr.rtype == RRType.CNAME and rr.name == target]
        if not cnames or not isinstance(cnames[0].rdata, CNAME):
            break
        chain.append(cnames[0])
        target = cnames[0].rdata.target
        if any(rr is cnames[0] for rr in chain[:-1]):
            break
    return chain, target


def classify(response: Message, zone: Name, name: Name, rtype: int, limit: int = 12) -> _Outcome:
    """What ``response`` from a server of ``zone`` says about ``name``/``rtype``.

    Records outside ``zone`` are not trusted; ``None`` means the answer is lame or
    bogus and another server should be asked.
    """
    if response.rcode not in (Rcode.NOERROR, Rcode.NXDOMAIN) or not name.is_subdomain(zone):
        return _LAME
    answer = [rr for rr in response.answer if rr.name.is_subdomain(zone)]
    chain, end = _chain(answer, name, rtype, limit)
    wanted = [rr for rr in answer if rr.name == end and rr.rtype == rtype]
    owners = {rr.name.key for rr in chain} | {end.key}
    extra = [
        rr for rr in answer
        if rr.rtype == RRType.DNAME or (isinstance(rr.rdata, RRSIG) and (
            (rr.name.key in owners and rr.rdata.type_covered in (rtype, RRType.CNAME))
            or rr.rdata.type_covered == RRType.DNAME))
    ]  # fmt: skip
    if rtype in (RRType.RRSIG, RRType.DNAME):
        extra = []
    proof = tuple(rr for rr in response.authority if rr.name.is_subdomain(zone) and (
        rr.rtype in (RRType.NSEC, RRType.NSEC3, RRType.RRSIG)))  # fmt: skip
    if wanted:
        return _Answer(tuple(chain + wanted + extra), end, True, proof)
    if chain and not end.is_subdomain(zone):
        return _Answer(tuple(chain + extra), end, False, proof)  # the chain leaves the zone
    soa = tuple(rr for rr in response.authority
                if rr.rtype == RRType.SOA and isinstance(rr.rdata, SOA)
                and rr.name.is_subdomain(zone) and end.is_subdomain(rr.name))  # fmt: skip
    ns_rrs = [rr for rr in response.authority if rr.rtype == RRType.NS and isinstance(rr.rdata, NS)]
    if ns_rrs and not response.aa and not soa and response.rcode == Rcode.NOERROR:
        child = ns_rrs[0].name
        if not (child.is_subdomain(zone) and child != zone and end.is_subdomain(child)):
            return _LAME  # a referral sideways or upwards
        if chain:
            return _Answer(tuple(chain + extra), end, False, proof)
        nameservers = tuple(dict.fromkeys(
            rr.rdata.target for rr in ns_rrs if rr.name == child and isinstance(rr.rdata, NS)
        ))  # fmt: skip
        addresses: dict[Key, list[str]] = {}
        for rr in response.additional:
            if not isinstance(rr.rdata, (A, AAAA)) or not rr.name.is_subdomain(zone):
                continue  # glue from outside the bailiwick is never believed
            if rr.name in nameservers:
                addresses.setdefault(rr.name.key, []).append(rr.rdata.address)
        ttl = min(rr.ttl for rr in ns_rrs)
        glue = {key: tuple(_v4_first(found)) for key, found in addresses.items()}
        return _Referral(Delegation(child, nameservers, glue, float(ttl)))
    if response.aa or soa:
        return _Negative(response.rcode, tuple(chain + extra), soa[:1], proof)
    if chain:
        return _Answer(tuple(chain + extra), end, False, proof)
    return _LAME


def _v4_first(addresses: Iterable[str]) -> list[str]:
    return sorted(addresses, key=lambda a: ":" in a)


class Recursion:
    """One question answered iteratively from the root hints (see the module doc)."""

    def __init__(
        self,
        name: Name,
        rtype: int,
        delegations: Delegations,
        *,
        now: float,
        cache: Cache | None = None,
        limits: Limits | None = None,
        ident: Callable[[], int] | None = None,
        port: int = 53,
        epoch: float | None = None,
    ) -> None:
        """``epoch``: wall-clock seconds at ``now`` (for RRSIG validity periods)."""
        self.name = name
        self.validating = bool(delegations.anchors)
        self._start = now
        self._epoch0 = time.time() if epoch is None else epoch
        self.rtype = rtype
        self.delegations = delegations
        self.cache = cache if cache is not None else Cache()
        self.limits = limits or Limits()
        self.port = port
        self._ident = ident or (lambda: random.SystemRandom().getrandbits(16))
        self._now = now
        self.queries = 0
        """Queries sent so far (each one-server exchange counts once)."""
        self.done = False
        self.result: Message | None = None
        self.error: ResolveError | None = None
        self._stub: StubLookup | None = None
        self._work = self._top()
        self._advance(None)

    # -- the sans-IO surface --------------------------------------------------------

    @property
    def ident(self) -> int | None:
        return None if self._stub is None else self._stub.ident

    @property
    def server(self) -> tuple[str, int] | None:
        return None if self._stub is None else self._stub.server

    def transmit(self) -> Transmit | None:
        return None if self._stub is None else self._stub.transmit()

    def get_timer(self) -> float | None:
        return None if self._stub is None or self.done else self._stub.get_timer()

    def handle_timer(self, now: float) -> None:
        self._now = max(self._now, now)
        if self._stub is not None:
            self._stub.handle_timer(now)
            self._check_stub()

    def receive(self, data: bytes, now: float, *, tcp: bool = False) -> None:
        self._now = max(self._now, now)
        if self._stub is not None:
            self._stub.receive(data, now, tcp=tcp)
            self._check_stub()

    # -- driving the generator ------------------------------------------------------

    def _check_stub(self) -> None:
        stub = self._stub
        if stub is not None and stub.done:
            self._advance(stub.result)

    def _advance(self, value: Message | None) -> None:
        try:
            ask = self._work.send(value) if self._stub is not None else next(self._work)
        except (ValueError, LookupError, ArithmeticError, TypeError) as exc:
            # input from the network must never crash the resolver: a bug of ours met
            # a response it did not expect; this lookup fails alone
            self._stub = None
            self.done = True
            self.error = ResolveError(f"cannot resolve {self.name}: {exc!r}", rcode=Rcode.SERVFAIL)
            return
        except StopIteration as stop:
            self._stub = None
            self.done = True
            result: Message = stop.value
            if result.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
                self.result = result
            else:
                self.error = ResolveError(
                    f"cannot resolve {self.name}: {self._why or 'no server answered'}",
                    rcode=result.rcode,
                )
            return
        name, rtype, address = ask
        self._stub = StubLookup(name, rtype, [(address, self.port)], ident=self._ident(),
                                now=self._now, timeout=self.limits.timeout, attempts=1,
                                rd=False, dnssec_ok=self.validating)  # fmt: skip

    _why = ""

    # -- the resolution -------------------------------------------------------------

    def _top(self) -> Generator[_Ask, Message | None, Message]:
        msg = yield from self._resolve(self.name, self.rtype, 0, frozenset(), self.validating)
        return msg

    def _epoch(self) -> int:
        return int(self._epoch0 + (self._now - self._start))

    def _fail(self, name: Name, rtype: int, why: str) -> Message:
        self._why = self._why or why
        return Message(qr=True, rcode=Rcode.SERVFAIL, question=(Question(name, rtype),))

    def _resolve(
        self, name: Name, rtype: int, depth: int, busy: frozenset[Key], validate: bool = False
    ) -> Generator[_Ask, Message | None, Message]:
        """The answer for ``name``/``rtype``; with ``validate``, AD tells it is secure."""
        question = (Question(name, rtype),)
        cached = self.cache.get(name, rtype, self._now)
        if cached is not None:
            return Message(qr=True, rcode=cached.rcode, question=question, answer=cached.answer,
                           ad=cached.secure)  # fmt: skip
        records: list[RR] = []
        target = name
        secure = validate
        for _ in range(self.limits.cname_chain):
            step = yield from self._step(target, rtype, depth, busy)
            if isinstance(step, Message):  # SERVFAIL
                return replace_question(step, question)
            if validate and secure:
                try:
                    secure = yield from self._check(step, target, rtype, depth, busy)
                except DnssecError as exc:
                    self.bogus = self.bogus or exc  # the first cause
                    return self._fail(name, rtype, f"DNSSEC: {exc}")
            records += step.records
            if isinstance(step, _Negative):
                out = Message(qr=True, rcode=step.rcode, question=question,
                              answer=tuple(records), authority=step.soa, ad=secure)  # fmt: skip
                self.cache.put(out, self._now)
                return out
            if step.complete:
                out = Message(qr=True, question=question, answer=tuple(records), ad=secure)
                self.cache.put(out, self._now)
                return out
            target = step.end
            cached = self.cache.get(target, rtype, self._now)
            if cached is not None and (cached.secure or not validate):
                return Message(qr=True, rcode=cached.rcode, question=question,
                               answer=tuple(records) + cached.answer,
                               ad=secure and cached.secure)  # fmt: skip
        return self._fail(name, rtype, "CNAME chain too long")

    bogus: DnssecError | None = None
    """Why the answer failed validation, when it did (``ede``: RFC 8914 code)."""

    # -- DNSSEC validation (RFC 4035 section 5) ---------------------------------------

    def _check(
        self, step: _Answer | _Negative, name: Name, rtype: int, depth: int, busy: frozenset[Key]
    ) -> Generator[_Ask, Message | None, bool]:
        """True when the step's records validate, False when its zone is insecure.

        Raises :class:`DnssecError` for bogus data.
        """
        now = self._epoch()
        data = [rr for rr in step.records if rr.rtype != RRType.RRSIG]
        sigs = [rr for rr in (*step.records, *step.proof) if isinstance(rr.rdata, RRSIG)]
        groups: dict[tuple[Key, int], list[RR]] = {}
        for rr in data:
            groups.setdefault((rr.name.key, rr.rtype), []).append(rr)
        if isinstance(step, _Negative):
            for rr in (*step.soa, *step.proof):
                if rr.rtype != RRType.RRSIG:
                    groups.setdefault((rr.name.key, rr.rtype), []).append(rr)
        dnames = [rr for rr in data if rr.rtype == RRType.DNAME]
        expanded: list[RR] = []
        for (_key, gtype), rrset in groups.items():
            owner = rrset[0].name
            if gtype == RRType.CNAME and any(owner.is_subdomain(d.name) and owner != d.name
                                             for d in dnames):  # fmt: skip
                continue  # synthesised from a DNAME, which is checked itself
            own_sigs = [rr for rr in sigs if rr.name == owner and isinstance(rr.rdata, RRSIG)
                        and rr.rdata.type_covered == gtype]  # fmt: skip
            first = own_sigs[0].rdata if own_sigs else None
            signer = first.signer if isinstance(first, RRSIG) else step.zone
            if not owner.is_subdomain(signer) or not signer.is_subdomain(step.zone):
                raise DnssecError(f"{owner} signed by {signer}, outside {step.zone}")
            keys = yield from self._zone_keys(signer, depth, busy)
            if keys is None:
                return False  # an insecure zone: nothing to check
            sig = verify_rrset(rrset, own_sigs, keys, now)
            if sig.labels < len(owner.labels) - (owner.labels[:1] == (b"*",)):
                expanded.append(rrset[0])
        if not groups:  # nothing at all: a negative answer without SOA or proof
            keys = yield from self._zone_keys(step.zone, depth, busy)
            if keys is None:
                return False
            raise DnssecError(f"no signed records about {name}", EDE_NSEC_MISSING)
        proof = [rr for rr in step.proof if rr.rtype in (RRType.NSEC, RRType.NSEC3)]
        if isinstance(step, _Negative):
            end = name
            for rr in step.records:
                if isinstance(rr.rdata, CNAME) and rr.name == end:
                    end = rr.rdata.target
            if step.rcode == Rcode.NXDOMAIN:
                check_nxdomain(end, proof)
            else:
                check_nodata(end, rtype, proof)
        for rr in expanded:  # RFC 4035 5.3.4: the name itself must not exist
            check_expansion(rr.name, proof)
        return True

    def _zone_keys(
        self, zone: Name, depth: int, busy: frozenset[Key]
    ) -> Generator[_Ask, Message | None, list[DNSKEY] | None]:
        """The zone's validated keys; None when the zone is provably unsigned."""
        store = self.delegations.zone_keys
        known = store.get(zone.key)
        if known is not None and known[1] > self._now:
            return known[0]
        anchors = self.delegations.anchors.get(zone.key)
        if anchors is not None:
            ds = [a for a in anchors if isinstance(a, DS)]
            anchor_keys = [a for a in anchors if isinstance(a, DNSKEY)]
        elif not zone.labels or not any(
            zone.is_subdomain(Name(k)) for k in self.delegations.anchors
        ):
            return None  # no trust anchor above this zone
        else:
            if zone.key in busy:
                raise DnssecError(f"DS lookup loop at {zone}")
            found = yield from self._resolve(zone, RRType.DS, depth, busy | {zone.key}, True)
            if found.rcode not in (Rcode.NOERROR, Rcode.NXDOMAIN):
                raise DnssecError(f"no answer for the DS of {zone}", EDE_DNSKEY_MISSING)
            ds = [rr.rdata for rr in found.answer if isinstance(rr.rdata, DS) and rr.name == zone]
            if not found.ad or not ds:
                store[zone.key] = (None, self._now + 3600)
                return None  # the parent is insecure, or proves there is no DS
            anchor_keys = []
        fetched = yield from self._resolve(zone, RRType.DNSKEY, depth, busy | {zone.key})
        dnskeys = [rr for rr in fetched.answer if rr.rtype == RRType.DNSKEY and rr.name == zone]
        sigs = [rr for rr in fetched.answer if isinstance(rr.rdata, RRSIG) and rr.name == zone]
        if not dnskeys:
            raise DnssecError(f"no DNSKEY for {zone}", EDE_DNSKEY_MISSING)
        try:
            keys = trusted_keys(dnskeys, sigs, self._epoch(), ds=ds, anchors=anchor_keys)
        except DnssecError:
            # fetched for the chain without validation: never an answer of its own
            self.cache.discard(zone, RRType.DNSKEY)
            raise
        store[zone.key] = (keys, self._now + min(rr.ttl for rr in dnskeys))
        # the RRset is now validated: a query for it gets it as secure (AD)
        self.cache.put(replace(fetched, ad=True), self._now)
        return keys

    def _step(
        self, name: Name, rtype: int, depth: int, busy: frozenset[Key]
    ) -> Generator[_Ask, Message | None, _Answer | _Negative | Message]:
        """Ask down from the closest known zone cut until a server answers for ``name``.

        A DS RRset lives in the parent zone (RFC 4035 section 3.1.4.1): its question
        starts above the name.
        """
        above = name.parent() if rtype == RRType.DS and name.labels else name
        cut = self.delegations.closest(above, self._now)
        for _ in range(self.limits.referrals):
            outcome: _Outcome = None
            addresses = yield from self._addresses(cut, depth, busy)
            for address in addresses * self.limits.attempts:
                if self.queries >= self.limits.queries:
                    return self._fail(name, rtype, "too many queries")
                self.queries += 1
                response = yield (name, rtype, address)
                if response is not None:
                    outcome = classify(response, cut.zone, name, rtype, self.limits.cname_chain)
                    if outcome is not None:
                        break
            if outcome is None:
                return self._fail(name, rtype, f"no server of {cut.zone} gave a usable answer")
            if isinstance(outcome, _Referral):
                child = outcome.delegation
                child.expires += self._now
                self.delegations.put(child)
                cut = child
                continue
            return replace(outcome, zone=cut.zone)
        return self._fail(name, rtype, "too many referrals")

    def _addresses(
        self, cut: Delegation, depth: int, busy: frozenset[Key]
    ) -> Generator[_Ask, Message | None, list[str]]:
        """Addresses of the zone's servers: glue first, then resolved on the side."""
        out = [a for ns in cut.nameservers for a in cut.addresses.get(ns.key, ())]
        if out:
            return _v4_first(dict.fromkeys(out))
        if depth >= self.limits.ns_depth:
            self._why = self._why or "name servers nested too deep"
            return []
        for ns in cut.nameservers:
            if ns.key in busy or ns.is_subdomain(cut.zone):
                continue  # being resolved already, or needing glue it lacks
            found: list[str] = []
            for rtype in (RRType.A, RRType.AAAA):
                sub = yield from self._resolve(ns, rtype, depth + 1, busy | {ns.key})
                found += [rr.rdata.address for rr in sub.answer
                          if rr.rtype == rtype and isinstance(rr.rdata, (A, AAAA))]  # fmt: skip
                if found:
                    break
            if found:
                cut.addresses[ns.key] = tuple(found)
                return found
        return []


def replace_question(msg: Message, question: tuple[Question, ...]) -> Message:
    return Message(qr=True, rcode=msg.rcode, question=question, answer=msg.answer,
                   authority=msg.authority)  # fmt: skip
