"""vchan flows: the server and client handshakes and the asyncio driver.

The server grants the shared page (and ring pages for orders of 12 and more) to the
client domain, allocates an unbound event-channel port for it and writes
``ring-ref`` and ``event-channel`` under
``/local/domain/<server>/data/vchan/<client>/<port>``, readable by the client only.
It marks the client as not yet connected (``cli_live = 2``) and asks to be woken on
the client's first write. The client reads the keys, maps the page and its rings,
binds the port, sets ``cli_live = 1``, asks to be woken on the server's writes and
signals.

Writes are queued and pushed into the ring as the peer reads (a task does it in
the background); ``write`` waits only while more than ``HIGH_WATER`` bytes are
queued. A flow's reads and writes may wait at the same time: one task per flow takes the
port's events and wakes every waiter, which then checks the rings again.
Live bytes take only libxenvchan's values (0 exited, 1 connected, 2 client not yet
connected). libxenvchan has no half close: its ``libxenvchan_close`` sets the live
byte to 0 and signals, and a peer then reads what is left in the ring and sees the
end of the stream. ``shutdown`` does exactly that but keeps reading (and the rings
mapped); ``close`` then releases everything. A reader sees the end of the stream when
the peer's live byte is 0 and its ring is empty.

A writer cannot tell from the page whether a peer at live 0 shut down or went away
(libxenvchan refuses to write to it at all). We keep writing to it while it reads:
once its live byte is 0, a ring that stays full for ``LINGER`` seconds means the
peer is gone, and the write raises :class:`FlowClosed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from collections.abc import Sequence

from mirage.core.types import FlowClosed
from mirage.xen import Domain, Grant, Mapping, Perm
from mirage.xen.xenstore import AsyncClient, XsError

from ._endpoint import Endpoint, VchanError
from ._layout import (
    CLI_LIVE,
    CLI_NOTIFY,
    GRANTS,
    LEFT_ORDER,
    RIGHT_ORDER,
    SRV_LIVE,
    SRV_NOTIFY,
    Live,
    Notify,
    RingPlan,
    check_orders,
    plan_rings,
)

__all__ = ["VchanFlow", "vchan_path"]

_PORT_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
POLL = 1.0  # seconds between re-checks, should an event ever be missed
HIGH_WATER = 1 << 16  # bytes queued beyond the ring before write() waits
LINGER = 5.0  # seconds close() spends sending what is queued


async def vchan_path(xs: AsyncClient, server: int, client: int, port: str) -> str:
    if not _PORT_NAME.fullmatch(port):
        raise ValueError(f"bad vchan port name {port!r}")
    return f"{await xs.get_domain_path(server)}/data/vchan/{client}/{port}"


def _ring_memory(page: memoryview, plan: RingPlan, pages: memoryview | None) -> memoryview:
    if plan.offset is not None:
        return page[plan.offset : plan.offset + plan.size]
    assert pages is not None
    return pages[: plan.size]


class VchanFlow:
    """A connected vchan end; make one with :meth:`listen` or :meth:`connect`."""

    def __init__(
        self,
        domain: Domain,
        endpoint: Endpoint,
        port: int,
        regions: Sequence[Grant | Mapping],
        *,
        xs: AsyncClient | None = None,
        xs_path: str | None = None,
    ) -> None:
        self.domain = domain
        self.endpoint = endpoint
        self.port = port
        self._regions = list(regions)
        self._xs, self._xs_path = xs, xs_path
        self._event = asyncio.Event()
        self._shut = False
        self._closed = False
        self._pending = bytearray()
        self._stalled_since: float | None = None
        self._peer_gone = False
        self._flusher: asyncio.Task[None] | None = None
        self._pump = asyncio.get_running_loop().create_task(self._events())

    # -- handshakes ------------------------------------------------------------

    @classmethod
    async def listen(
        cls,
        domain: Domain,
        xs: AsyncClient,
        client: int,
        port: str,
        *,
        read_min: int = 1024,
        write_min: int = 1024,
    ) -> VchanFlow:
        """Offer a vchan to domain ``client`` and wait until it connects."""
        path = await vchan_path(xs, domain.domid, client, port)
        left, right = plan_rings(read_min, write_min)
        check_orders(left.order, right.order)
        gnttab = domain.gnttab
        shared = gnttab.share(client, 1)
        regions: list[Grant | Mapping] = [shared]
        page = shared.memory
        refs: list[int] = []
        rings: list[memoryview | None] = []
        for plan in (left, right):
            if plan.pages:
                grant = gnttab.share(client, plan.pages)
                regions.append(grant)
                refs.extend(grant.refs)
                rings.append(grant.memory)
            else:
                rings.append(None)
        for i, ref in enumerate(refs):
            _U32.pack_into(page, GRANTS + 4 * i, ref)
        _U16.pack_into(page, LEFT_ORDER, left.order)
        _U16.pack_into(page, RIGHT_ORDER, right.order)
        page[CLI_LIVE] = Live.WAITING
        page[SRV_LIVE] = Live.CONNECTED
        page[CLI_NOTIFY] = Notify.WRITE
        page[SRV_NOTIFY] = 0
        evtchn = domain.evtchn.bind_unbound_port(client)
        gnttab.unmap_notify(shared, SRV_LIVE, evtchn)
        endpoint = Endpoint(
            page,
            _ring_memory(page, left, rings[0]),
            _ring_memory(page, right, rings[1]),
            is_server=True,
            fetch_and=lambda off, m: gnttab.fetch_and(shared, off, m),
            fetch_or=lambda off, b: gnttab.fetch_or(shared, off, b),
        )
        flow = cls(domain, endpoint, evtchn, regions, xs=xs, xs_path=path)
        acl = (Perm("n", domain.domid), Perm("r", client))
        try:
            await xs.write(f"{path}/ring-ref", str(shared.refs[0]))
            await xs.write(f"{path}/event-channel", str(evtchn))
            for key in ("", "/ring-ref", "/event-channel"):
                await xs.set_perms(path + key, acl)
            while page[CLI_LIVE] == Live.WAITING:
                event = flow._event
                await flow._wait(event)
        except BaseException:
            await flow.close()
            raise
        return flow

    @classmethod
    async def connect(cls, domain: Domain, xs: AsyncClient, server: int, port: str) -> VchanFlow:
        """Connect to the vchan ``port`` that domain ``server`` offers us."""
        path = await vchan_path(xs, server, domain.domid, port)
        await xs.wait_for(f"{path}/event-channel", lambda v: v is not None)
        ref = int(await xs.read(f"{path}/ring-ref"))
        remote_port = int(await xs.read(f"{path}/event-channel"))
        gnttab = domain.gnttab
        shared = gnttab.map(server, [ref])
        regions: list[Mapping] = [shared]
        page = shared.memory
        try:
            left, right = check_orders(
                _U16.unpack_from(page, LEFT_ORDER)[0], _U16.unpack_from(page, RIGHT_ORDER)[0]
            )
            rings: list[memoryview | None] = []
            index = 0
            for plan in (left, right):
                if plan.pages:
                    refs = [
                        _U32.unpack_from(page, GRANTS + 4 * (index + i))[0]
                        for i in range(plan.pages)
                    ]
                    index += plan.pages
                    mapping = gnttab.map(server, refs)
                    regions.append(mapping)
                    rings.append(mapping.memory)
                else:
                    rings.append(None)
            evtchn = domain.evtchn.bind_interdomain(server, remote_port)
        except BaseException:
            for region in regions:
                gnttab.unmap(region)
            raise
        gnttab.unmap_notify(shared, CLI_LIVE, evtchn)
        endpoint = Endpoint(
            page,
            _ring_memory(page, left, rings[0]),
            _ring_memory(page, right, rings[1]),
            is_server=False,
            fetch_and=lambda off, m: gnttab.fetch_and(shared, off, m),
            fetch_or=lambda off, b: gnttab.fetch_or(shared, off, b),
        )
        flow = cls(domain, endpoint, evtchn, regions)
        page[CLI_LIVE] = Live.CONNECTED
        gnttab.fetch_or(shared, SRV_NOTIFY, Notify.WRITE)
        domain.evtchn.notify(evtchn)
        return flow

    # -- events ----------------------------------------------------------------

    async def _events(self) -> None:
        while True:
            await self.domain.evtchn.wait(self.port)
            self._kick()

    def _kick(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def _wait(self, event: asyncio.Event) -> None:
        # asyncio.timeout, not wait_for: before Python 3.12, wait_for can swallow a
        # cancellation that races with the event, and a loop around it never ends.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL):
                await event.wait()

    def _signal(self) -> None:
        self.domain.evtchn.notify(self.port)

    def _broken(self, err: VchanError) -> VchanError:
        self._close_now()
        return err

    # -- Flow ------------------------------------------------------------------

    async def read(self) -> bytes:
        ep = self.endpoint
        while not self._closed:
            event = self._event
            live = ep.peer_live()
            try:
                data, notify = ep.read(1 << 20)
            except VchanError as err:
                raise self._broken(err) from None
            if data:
                if notify:
                    self._signal()
                return data
            if live == Live.EXITED:
                return b""
            ep.request_notify(Notify.WRITE)
            if ep.data_ready() or ep.peer_live() != live:
                continue
            await self._wait(event)
        return b""

    async def write(self, data: bytes) -> None:
        """Queue ``data``: it goes into the ring as the peer makes room. Waits only
        while more than ``HIGH_WATER`` bytes are queued."""
        self._check_writable()
        self._pending += data
        try:
            self._push()
            while len(self._pending) > HIGH_WATER:
                event = self._event
                self.endpoint.request_notify(Notify.READ)
                if self._push():
                    continue
                self._stalled()
                self._check_writable()
                await self._wait(event)
        except VchanError as err:
            raise self._broken(err) from None
        if self._pending and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    def _check_writable(self) -> None:
        if self._shut or self._closed:
            raise FlowClosed("vchan is shut down")
        if self._peer_gone:
            self._pending.clear()
            raise FlowClosed("the vchan peer has gone")

    def _push(self) -> int:
        """Move queued bytes into the ring; how many moved."""
        if not self._pending:
            return 0
        n, notify = self.endpoint.write(self._pending)
        del self._pending[:n]
        if notify:
            self._signal()
        if n:
            self._stalled_since = None
        return n

    def _stalled(self) -> bool:
        """Whether a peer at live 0 has left the ring full for ``LINGER`` seconds
        (then it is gone, not merely shut down: see the module's notes)."""
        if self.endpoint.peer_live() != Live.EXITED:
            self._stalled_since = None
            return False
        now = asyncio.get_running_loop().time()
        if self._stalled_since is None:
            self._stalled_since = now
        if now - self._stalled_since >= LINGER:
            self._peer_gone = True
        return self._peer_gone

    async def _flush(self) -> None:
        """Push queued bytes until none are left or the peer is gone."""
        try:
            while self._pending and not self._closed:
                event = self._event
                if self._push():
                    continue
                if self._stalled():
                    self._pending.clear()
                    return
                self.endpoint.request_notify(Notify.READ)
                if not self._push():
                    await self._wait(event)
        except VchanError:
            self._close_now()

    async def writev(self, bufs: Sequence[bytes]) -> None:
        self._check_writable()
        await self.write(b"".join(bufs))

    async def _drain(self, timeout: float | None) -> None:
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(flusher)

    async def shutdown(self) -> None:
        """Send what is queued, then tell the peer that nothing more will come: the
        live byte goes to 0, as libxenvchan's close sets it; we keep reading."""
        if not self._shut and not self._closed:
            self._shut = True
            await self._drain(None)
            self.endpoint.set_live(Live.EXITED)
            self._signal()

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = self._shut = True
        self.endpoint.set_live(Live.EXITED)
        with contextlib.suppress(Exception):
            self._signal()
        self._pump.cancel()
        self._kick()

    async def close(self) -> None:
        """Send what is queued (for at most ``LINGER`` seconds), then close."""
        if self._closed and not self._regions:
            return
        self._shut = True
        await self._drain(LINGER)
        self._close_now()
        if self._flusher is not None:
            self._flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        self.domain.evtchn.unbind(self.port)
        if self._xs is not None and self._xs_path is not None:
            with contextlib.suppress(XsError, OSError):
                await self._xs.rm(self._xs_path)
        gnttab = self.domain.gnttab
        for region in self._regions:
            if isinstance(region, Grant):
                gnttab.end_access(region)
        self._regions.clear()

    async def disconnect(self) -> None:
        await self.close()
