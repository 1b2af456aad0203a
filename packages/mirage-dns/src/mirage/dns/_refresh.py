"""When a secondary checks its primary (RFC 1035 section 4.3.5, RFC 1996).

Theory of operation. :class:`RefreshTimer` holds the SOA timers of a secondary zone
and explicit time. :meth:`get_timer` is when to next ask the primary for its SOA;
:meth:`handle_timer` says whether that time has come. The caller reports the outcome
with :meth:`checked` (the primary answered: next check after REFRESH) or
:meth:`failed` (next try after RETRY; after EXPIRE without success the zone is
:attr:`expired`). :meth:`notified` (a NOTIFY arrived) makes the check due at once.
:func:`serial_newer` compares serials with RFC 1982 arithmetic.
"""

from __future__ import annotations

from ._rdata import SOA

__all__ = ["RefreshTimer", "serial_newer"]


def serial_newer(a: int, b: int) -> bool:
    """True when serial ``a`` is newer than ``b`` (RFC 1982, 32-bit)."""
    return a != b and ((a - b) & 0xFFFFFFFF) < 0x80000000


class RefreshTimer:
    def __init__(self, soa: SOA, now: float) -> None:
        self.soa = soa
        self._due = now  # check at once when started
        self._last_success = now
        self.expired = False

    def get_timer(self) -> float:
        return self._due

    def handle_timer(self, now: float) -> bool:
        return now >= self._due

    def notified(self, now: float) -> None:
        self._due = now

    def checked(self, soa: SOA, now: float) -> None:
        self.soa = soa
        self._last_success = now
        self.expired = False
        self._due = now + soa.refresh

    def failed(self, now: float) -> None:
        if now - self._last_success >= self.soa.expire:
            self.expired = True
        self._due = now + self.soa.retry
