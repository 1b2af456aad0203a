"""An answer cache with explicit time, and negative caching after RFC 2308.

Entries are keyed by (name, type). A positive entry keeps the answer section (a
CNAME chain and the final RRset) for the smallest TTL in it; a negative entry
(NXDOMAIN, or NODATA: NOERROR with no answer) keeps the rcode for
``min(SOA TTL, SOA MINIMUM)`` of the SOA in the authority section, and is not kept at
all without one (RFC 2308 section 5). TTLs handed out are decremented by the time an
entry has spent in the cache. ``now`` is any monotonic clock in seconds.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ._consts import Rcode, RRType
from ._message import RR, Message
from ._name import Name
from ._rdata import SOA

__all__ = ["Cache", "CachedAnswer"]


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """What the cache returns: the rcode and the answer section with its TTLs decremented."""

    rcode: int
    answer: tuple[RR, ...]
    secure: bool = False
    """The answer was validated with DNSSEC (the AD bit of the response it came from)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    """A cached answer with the time it was stored and the time it expires."""

    stored: float
    expires: float
    rcode: int
    answer: tuple[RR, ...]
    secure: bool = False


class Cache:
    """A bounded LRU map from (name, type) to answers, with expiry."""

    def __init__(
        self, max_entries: int = 10000, max_ttl: int = 86400, max_negative_ttl: int = 3600
    ) -> None:
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.max_negative_ttl = max_negative_ttl
        self._entries: OrderedDict[tuple[tuple[bytes, ...], int], _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: Name, rtype: int, now: float) -> CachedAnswer | None:
        key = (name.key, rtype)
        entry = self._entries.get(key)
        if entry is None or entry.expires <= now:
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        spent = int(now - entry.stored)
        answer = tuple(RR(rr.name, rr.rtype, rr.rclass, max(0, rr.ttl - spent), rr.rdata)
                       for rr in entry.answer)  # fmt: skip
        return CachedAnswer(entry.rcode, answer, entry.secure)

    def put(self, response: Message, now: float) -> None:
        """Remember the answer to the response's question, if it may be cached."""
        if len(response.question) != 1 or response.tc:
            return
        question = response.question[0]
        ttl: int | None
        if response.rcode == Rcode.NOERROR and response.answer:
            ttl = min(*(rr.ttl for rr in response.answer), self.max_ttl)
        elif response.rcode in (Rcode.NXDOMAIN, Rcode.NOERROR):
            ttl = _negative_ttl(response)
            if ttl is None:
                return
            ttl = min(ttl, self.max_negative_ttl)
        else:
            return
        entry = _Entry(now, now + ttl, response.rcode, response.answer, response.ad)
        key = (question.name.key, question.rtype)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, name: Name, rtype: int) -> None:
        """Forget the answer for ``name``/``rtype``, if any."""
        self._entries.pop((name.key, rtype), None)

    def expire(self, now: float) -> int:
        """Drop the entries that have expired; return how many."""
        dead = [k for k, e in self._entries.items() if e.expires <= now]
        for key in dead:
            del self._entries[key]
        return len(dead)


def _negative_ttl(response: Message) -> int | None:
    for rr in response.authority:
        if rr.rtype == RRType.SOA and isinstance(rr.rdata, SOA):
            return min(rr.ttl, rr.rdata.minimum)
    return None
