"""netfront: a mirage ``Network`` over a Xen network backend.

Theory of operation. :meth:`Netfront.connect` reads the device's ``mac``, waits for
the backend's InitWait and checks that it offers ``feature-rx-copy``. It shares a
transmit ring page, a receive ring page and one data page per slot of each ring
(256 + 256), binds one event channel for both rings and publishes ``tx-ring-ref``,
``rx-ring-ref``, ``event-channel``, ``request-rx-copy`` and ``feature-rx-notify``
before moving to Connected (as Linux's netfront does); it is ready once the backend
is Connected too.

Transmit: a frame takes a free transmit id (waiting while all 256 are in flight),
is copied into that id's page and announced by a ``netif_tx_request``; the response
frees the id. Receive: every receive id lends its page to the backend with a
``netif_rx_request``; a response names the id, offset and length of a frame, which
goes to the ``listen`` callback, and the page is lent again. One task serves both
rings on the shared port. When the backend closes (or breaks a ring), the device
closes: writes are dropped and ``listen`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ._frames import ETH_HEADER, MTU, FrameInbox, InboxNetwork, parse_mac
from ._hypervisor import PAGE_SIZE, Domain, Grant, HypervisorError
from ._wakeup import Wakeup
from .netif import (
    RX_SLOT,
    TX_SLOT,
    NetifDecodeError,
    RxFlags,
    RxRequest,
    TxRequest,
    pull_rx_response,
    pull_tx_response,
    push_rx_request,
    push_tx_request,
)
from .ring import FrontRing, RingError, SharedRing
from .xenbus import XenbusState, read_state, wait_state, write_state
from .xenstore import AsyncClient, XsError

__all__ = ["Netfront"]

log = logging.getLogger("mirage.xen.netfront")


class Netfront(InboxNetwork):
    def __init__(
        self,
        domain: Domain,
        xs: AsyncClient,
        directory: str,
        backend: str,
        *,
        mac: bytes,
        grants: tuple[Grant, Grant, Grant, Grant],
        tx: FrontRing,
        rx: FrontRing,
        wakeup: Wakeup,
    ) -> None:
        self.domain, self.xs, self.directory, self.backend = domain, xs, directory, backend
        self._mac = mac
        self._grants = grants
        self._tx_pages, self._rx_pages = grants[2], grants[3]
        self._tx, self._rx = tx, rx
        self._wakeup = wakeup
        self._inbox = FrameInbox()
        self._free: asyncio.Queue[int] = asyncio.Queue()
        for i in range(tx.ring.size):
            self._free.put_nowait(i)
        self.closed = False
        for i in range(rx.ring.size):
            rx.push_request(push_rx_request(RxRequest(i, self._rx_pages.refs[i])))
        if rx.push_requests_and_check_notify():
            wakeup.notify()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())
        self._watch = loop.create_task(self._watch_backend())

    @classmethod
    async def connect(cls, domain: Domain, xs: AsyncClient, devid: int = 0) -> Netfront:
        """Connect network interface ``devid`` (``vif``) of this domain."""
        directory = f"/local/domain/{domain.domid}/device/vif/{devid}"
        backend = (await xs.read(f"{directory}/backend")).decode()
        backend_id = int(await xs.read(f"{directory}/backend-id"))
        mac = parse_mac((await xs.read(f"{directory}/mac")).decode())
        await wait_state(xs, backend, {XenbusState.INIT_WAIT, XenbusState.CONNECTED})
        if await _flag(xs, f"{backend}/feature-rx-copy") != 1:
            await write_state(xs, directory, XenbusState.CLOSED)
            raise HypervisorError("the backend does not offer feature-rx-copy")
        gnttab = domain.gnttab
        tx_grant = gnttab.share(backend_id, 1)
        rx_grant = gnttab.share(backend_id, 1)
        tx_shared = SharedRing(tx_grant.memory, TX_SLOT)
        rx_shared = SharedRing(rx_grant.memory, RX_SLOT)
        tx_shared.init()
        rx_shared.init()
        tx_pages = gnttab.share(backend_id, tx_shared.size, writable=False)
        rx_pages = gnttab.share(backend_id, rx_shared.size)
        port = domain.evtchn.bind_unbound_port(backend_id)
        for key, value in (
            ("tx-ring-ref", tx_grant.refs[0]),
            ("rx-ring-ref", rx_grant.refs[0]),
            ("event-channel", port),
            ("request-rx-copy", 1),
            ("feature-rx-notify", 1),
            ("feature-sg", 0),
        ):
            await xs.write(f"{directory}/{key}", str(value))
        await write_state(xs, directory, XenbusState.CONNECTED)
        state = await wait_state(xs, backend, {XenbusState.CONNECTED, XenbusState.CLOSED})
        wakeup = Wakeup(domain.evtchn, port)
        self = cls(
            domain,
            xs,
            directory,
            backend,
            mac=mac,
            grants=(tx_grant, rx_grant, tx_pages, rx_pages),
            tx=FrontRing(tx_shared),
            rx=FrontRing(rx_shared),
            wakeup=wakeup,
        )
        if state != XenbusState.CONNECTED:
            await self.disconnect()
            raise HypervisorError("the backend closed the device during the handshake")
        return self

    # -- mirage Network -------------------------------------------------------------

    async def write(self, frame: bytes) -> None:
        """Send one Ethernet frame; dropped (and counted) if oversized or closed."""
        stats = self._inbox.stats
        if self.closed or not ETH_HEADER <= len(frame) <= MTU + ETH_HEADER:
            stats.tx_dropped += 1
            return
        slot = await self._free.get()
        if slot < 0:  # closed meanwhile: pass the marker on to the next writer
            self._free.put_nowait(slot)
            stats.tx_dropped += 1
            return
        self._tx_pages.memory[slot * PAGE_SIZE : slot * PAGE_SIZE + len(frame)] = frame
        self._tx.push_request(
            push_tx_request(TxRequest(self._tx_pages.refs[slot], 0, 0, slot, len(frame)))
        )
        if self._tx.push_requests_and_check_notify():
            self._wakeup.notify()
        stats.tx_packets += 1
        stats.tx_bytes += len(frame)

    # -- the ring task --------------------------------------------------------------

    async def _run(self) -> None:
        wakeup = self._wakeup
        try:
            while not self.closed:
                event = wakeup.event
                self._tx_done()
                self._received()
                if not (self._tx.final_check_for_responses() or self._rx_check()):
                    await wakeup.wait(event)
        except (RingError, NetifDecodeError) as err:
            log.warning("backend broke a ring: %s", err)
            await self._close(XenbusState.CLOSED)

    def _rx_check(self) -> bool:
        return self._rx.final_check_for_responses()

    def _tx_done(self) -> None:
        size = self._tx.ring.size
        for raw in self._tx.take_responses():
            rsp = pull_tx_response(raw)
            if rsp.id >= size:
                raise NetifDecodeError(f"transmit response for unknown id {rsp.id}")
            if rsp.status < 0:
                self._inbox.stats.tx_dropped += 1
            self._free.put_nowait(rsp.id)

    def _received(self) -> None:
        size, pages = self._rx.ring.size, self._rx_pages
        reposted = 0
        for raw in self._rx.take_responses():
            rsp = pull_rx_response(raw)
            if rsp.id >= size:
                raise NetifDecodeError(f"receive response for unknown id {rsp.id}")
            length, offset = rsp.status, rsp.offset
            if length > 0 and offset + length <= PAGE_SIZE and not rsp.flags & RxFlags.MORE_DATA:
                start = rsp.id * PAGE_SIZE + offset
                self._inbox.put(bytes(pages.memory[start : start + length]))
            else:
                self._inbox.stats.rx_dropped += 1
            self._rx.push_request(push_rx_request(RxRequest(rsp.id, pages.refs[rsp.id])))
            reposted += 1
        if reposted and self._rx.push_requests_and_check_notify():
            self._wakeup.notify()

    async def _watch_backend(self) -> None:
        await wait_state(self.xs, self.backend, {XenbusState.CLOSING, XenbusState.CLOSED})
        await self._close(XenbusState.CLOSED)

    async def _close(self, state: XenbusState) -> None:
        if self.closed:
            return
        self.closed = True
        self._free.put_nowait(-1)  # wakes the writers waiting for an id
        with contextlib.suppress(Exception):
            await write_state(self.xs, self.directory, XenbusState.CLOSING)
            await write_state(self.xs, self.directory, state)
        self._inbox.close()

    async def state(self) -> XenbusState:
        return await read_state(self.xs, self.directory)

    async def disconnect(self) -> None:
        me = asyncio.current_task()
        for task in (self._task, self._watch):
            if task is not me and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close(XenbusState.CLOSED)
        await self._wakeup.stop()
        with contextlib.suppress(HypervisorError):
            self.domain.evtchn.unbind(self._wakeup.port)
        for grant in self._grants:
            with contextlib.suppress(HypervisorError):
                self.domain.gnttab.end_access(grant)


async def _flag(xs: AsyncClient, path: str) -> int:
    try:
        return int(await xs.read(path))
    except (XsError, ValueError):
        return 0
