"""A secondary: follow a primary's zone over a mirage ``Stack`` (AXFR, NOTIFY).

:class:`Secondary` transfers the zone at start, serves it through a
:class:`~mirage.dns.server.DnsServer`, and then checks the primary's SOA serial when
the SOA's REFRESH interval passes (RETRY after a failure) or at once when the primary
sends a NOTIFY; a newer serial (RFC 1982) brings an IXFR (RFC 1995), which gives
the deltas or, from a primary without them, the whole zone. Timing decisions are made
by the sans-IO :class:`~mirage.dns._refresh.RefreshTimer` with a monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from mirage.core.types import Stack

from ._cache import Cache
from ._consts import RRType
from ._errors import DnsError
from ._name import Name
from ._rdata import SOA
from ._refresh import RefreshTimer, serial_newer
from ._server import Authority
from .resolver import DnsResolver
from .server import DnsServer
from .xfr import axfr, ixfr

__all__ = ["Secondary"]

log = logging.getLogger("mirage.dns.secondary")


class Secondary:
    def __init__(
        self,
        stack: Stack,
        origin: Name | str,
        primary: tuple[str, int],
        port: int = 53,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll: float = 0.2,
    ) -> None:
        if isinstance(origin, str):
            origin = Name.from_text(origin if origin.endswith(".") else origin + ".")
        self.stack = stack
        self.origin = origin
        self.primary = primary
        self.port = port
        self.clock = clock
        self.poll = poll
        self.server: DnsServer | None = None
        self.transfers = 0
        self.incremental = 0
        """Transfers that were IXFR deltas (the rest were whole zones)."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        zone = await axfr(self.stack, *self.primary, self.origin)
        self.transfers += 1
        authority = Authority([zone])
        self.server = DnsServer(self.stack, authority, self.port)
        await self.server.start()
        assert isinstance(zone.soa.rdata, SOA)
        self._timer = RefreshTimer(zone.soa.rdata, self.clock())
        self._timer.checked(zone.soa.rdata, self.clock())
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.server is not None:
            await self.server.stop()

    async def _follow(self) -> None:
        assert self.server is not None
        authority = self.server.authority
        while True:
            if authority.notifications:
                if any(origin == self.origin for origin, _ in authority.notifications):
                    self._timer.notified(self.clock())
                authority.notifications.clear()
            if self._timer.handle_timer(self.clock()):
                await self._check(authority)
            await asyncio.sleep(self.poll)

    async def _check(self, authority: Authority) -> None:
        resolver = DnsResolver(self.stack, [self.primary], cache=Cache(max_entries=0))
        try:
            answer = await resolver.query(self.origin, RRType.SOA)
            soas = [rr.rdata for rr in answer.answer if isinstance(rr.rdata, SOA)]
            if not soas:
                raise DnsError("no SOA in the primary's answer")
            current = self._timer.soa
            if serial_newer(soas[0].serial, current.serial):
                zone = authority.zones[self.origin.key]
                zone, how = await ixfr(self.stack, *self.primary, zone)
                authority.replace_zone(zone)
                self.transfers += 1
                self.incremental += how == "incremental"
                log.info("%s: serial %d from %s (%s)", self.origin, soas[0].serial,
                         self.primary, how)  # fmt: skip
            self._timer.checked(soas[0], self.clock())
        except (DnsError, OSError, ConnectionError) as exc:
            log.warning("%s: refresh from %s failed: %s", self.origin, self.primary, exc)
            self._timer.failed(self.clock())
        finally:
            await resolver.disconnect()
