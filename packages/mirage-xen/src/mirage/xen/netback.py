"""netback: the backend's end of a Xen network device, as a mirage ``Network``.

Theory of operation. :meth:`Netback.serve` publishes ``feature-rx-copy`` (the only
receive mode: the backend copies frames into pages the frontend lends) and moves to
InitWait, waits for the frontend to be Initialised or Connected, reads
``tx-ring-ref``, ``rx-ring-ref`` and ``event-channel``, insists on
``request-rx-copy`` and ``feature-rx-notify`` (as Linux's netback does), maps both
rings, binds the port and moves to Connected.

The backend object is the host's side of the link (Linux's ``vif<domid>.<devid>``):
frames the frontend transmits are what :meth:`listen` delivers, and :meth:`write`
hands a frame to the frontend by filling the next page the frontend lent on the
receive ring (frames wait, boundedly, while it has lent none). One task serves both
rings on the shared port. Frames move by grant copy (nothing but the rings stays
mapped), so a frontend may grant a fresh page for every packet, as Linux's does.

The backend offers ``feature-sg``: a frontend may send a frame as a chain of slots
flagged ``MORE_DATA`` (as Linux's netfront does for a frame crossing a page), the
first slot's size being the whole frame's, at most 18 slots (Linux's
``XEN_NETBK_LEGACY_SLOTS_MAX``); every slot is answered with the packet's status.

A frontend that breaks the protocol gets the device Closed: a ring index beyond the
ring, a frame larger than the interface's MTU, a slot crossing its page, a chain
longer than 18 slots, running past the published requests or whose slots add up to
more than the frame, a request flagged ``EXTRA_INFO`` (the backend offers no
extras). Other devices of the same backend carry on. A grant the backend
cannot copy from or to costs only its packet, as in Linux's netback (whose grant
copy reports a bad status per operation): that request is answered with
``NETIF_RSP_ERROR`` (a transmitted frame, counted in ``rx_dropped``; a page lent
for receiving, whose frame is lost and counted in ``tx_dropped``), and the
device stays Connected.
"""

from __future__ import annotations

import collections
import logging
from typing import NoReturn

from ._backend import BackendDevice, locate
from ._frames import ETH_HEADER, MTU, FrameInbox, InboxNetwork, random_mac
from ._hypervisor import PAGE_SIZE, Domain, HypervisorError, Mapping
from ._wakeup import Wakeup
from .netif import (
    RX_SLOT,
    TX_SLOT,
    RxResponse,
    Status,
    TxFlags,
    TxRequest,
    TxResponse,
    pull_rx_request,
    pull_tx_request,
    push_rx_response,
    push_tx_response,
)
from .ring import BackRing, RingError, SharedRing
from .xenbus import XenbusState, wait_state, write_state
from .xenstore import AsyncClient, XsError

__all__ = ["Netback", "NetbackError"]

log = logging.getLogger("mirage.xen.netback")

MAX_SLOTS = 18  # XEN_NETBK_LEGACY_SLOTS_MAX: slots of one transmitted packet
PENDING_FRAMES = 256


class NetbackError(Exception):
    """The frontend broke the protocol; the device is Closed."""


class Netback(BackendDevice, InboxNetwork):
    def __init__(
        self,
        domain: Domain,
        xs: AsyncClient,
        directory: str,
        *,
        frontend: str,
        frontend_id: int,
        mac: bytes,
    ) -> None:
        super().__init__(domain, xs, directory, frontend, frontend_id)
        self._mac = mac
        self._inbox = FrameInbox()
        self._maps: list[Mapping] = []
        self._rx_lent: collections.deque[tuple[int, int]] = collections.deque()
        self._outbox: collections.deque[bytes] = collections.deque()
        self.error: NetbackError | None = None
        self.handle = 0

    @classmethod
    async def serve(
        cls,
        domain: Domain,
        xs: AsyncClient,
        frontend_id: int,
        devid: int = 0,
        *,
        mac: bytes | None = None,
    ) -> Netback:
        """Serve network interface ``devid`` of ``frontend_id``; ``mac`` is the host
        side's address (random if not given)."""
        directory, frontend = await locate(domain, xs, "vif", frontend_id, devid)
        self = cls(
            domain,
            xs,
            directory,
            frontend=frontend,
            frontend_id=frontend_id,
            mac=mac or random_mac(),
        )
        # The toolstack's "handle" numbers the interface (Linux names it
        # vif<domid>.<handle>); the device number when absent.
        self.handle = int(await _flag(xs, f"{directory}/handle", devid))
        await self._handshake()
        return self

    @property
    def name(self) -> str:
        return f"vif{self.frontend_id}.{self.handle}"

    async def _handshake(self) -> None:
        xs, d, fe = self.xs, self.directory, self.frontend
        for key, value in (("feature-rx-copy", 1), ("feature-rx-flip", 0), ("feature-sg", 1)):
            await xs.write(f"{d}/{key}", str(value))
        await write_state(xs, d, XenbusState.INIT_WAIT)
        state = await wait_state(
            xs, fe, {XenbusState.INITIALISED, XenbusState.CONNECTED, XenbusState.CLOSED}
        )
        if state == XenbusState.CLOSED:
            await self._refuse("the frontend closed the device during the handshake")
        try:
            tx_ref = int(await xs.read(f"{fe}/tx-ring-ref"))
            rx_ref = int(await xs.read(f"{fe}/rx-ring-ref"))
            remote_port = int(await xs.read(f"{fe}/event-channel"))
        except (XsError, ValueError) as err:
            await self._refuse(f"reading the frontend's rings: {err}")
        if await _flag(xs, f"{fe}/request-rx-copy") != 1:
            await self._refuse("the frontend does not request rx-copy")
        if await _flag(xs, f"{fe}/feature-rx-notify") != 1:
            await self._refuse("feature-rx-notify is mandatory")
        try:
            tx_map = self.domain.gnttab.map(self.frontend_id, [tx_ref])
            self._maps.append(tx_map)
            rx_map = self.domain.gnttab.map(self.frontend_id, [rx_ref])
            self._maps.append(rx_map)
            wakeup = self._bind(remote_port)
        except HypervisorError as err:
            await self._refuse(f"mapping the frontend's rings: {err}")
        tx = BackRing(SharedRing(tx_map.memory, TX_SLOT))
        rx = BackRing(SharedRing(rx_map.memory, RX_SLOT))
        await write_state(xs, d, XenbusState.CONNECTED)
        self._start(self._run(tx, rx, wakeup))

    async def _refuse(self, why: str) -> NoReturn:
        await self._shut(XenbusState.CLOSED)
        self._release()
        raise NetbackError(why)

    # -- mirage Network (the host's side of the link) --------------------------------

    async def write(self, frame: bytes) -> None:
        """Hand one frame to the frontend; dropped (and counted) if oversized, closed,
        or if too many wait for pages the frontend has not lent yet."""
        stats = self._inbox.stats
        if (
            self._shutting
            or self._wakeup is None
            or not ETH_HEADER <= len(frame) <= MTU + ETH_HEADER
            or len(self._outbox) >= PENDING_FRAMES
        ):
            stats.tx_dropped += 1
            return
        self._outbox.append(bytes(frame))
        self._wakeup.kick()

    # -- the ring task --------------------------------------------------------------

    async def _run(self, tx: BackRing, rx: BackRing, wakeup: Wakeup) -> None:
        try:
            while True:
                event = wakeup.event
                notify = self._transmitted(tx)
                notify |= self._deliver(rx)
                if notify:
                    wakeup.notify()
                more = tx.final_check_for_requests()
                if self._outbox:
                    more |= rx.final_check_for_requests()
                if not more:
                    await wakeup.wait(event)
        except (RingError, NetbackError) as err:
            log.warning("frontend %d broke the protocol: %s", self.frontend_id, err)
            self.error = err if isinstance(err, NetbackError) else NetbackError(str(err))
            await self._shut(XenbusState.CLOSED)

    # Grant copies, as Linux's netback makes them: the frontend may grant a new page
    # (or reuse a reference) for every packet, so nothing stays mapped.

    def _copy_from(self, gref: int, offset: int, size: int) -> bytes | None:
        """The frame, or None if the frontend's grant cannot be copied from."""
        try:
            return self.domain.gnttab.copy_from(self.frontend_id, gref, offset, size)
        except HypervisorError as err:
            log.info("frontend %d: bad transmit grant %d: %s", self.frontend_id, gref, err)
            return None

    def _copy_to(self, gref: int, frame: bytes) -> bool:
        """Whether the frame went into the frontend's page."""
        try:
            self.domain.gnttab.copy_to(self.frontend_id, gref, 0, frame)
        except HypervisorError as err:
            log.info("frontend %d: bad receive grant %d: %s", self.frontend_id, gref, err)
            return False
        return True

    def _transmitted(self, tx: BackRing) -> bool:
        """Frames the frontend sent (one slot, or a ``MORE_DATA`` chain of them): to
        the inbox, every slot answered."""
        reqs = [pull_tx_request(raw) for raw in tx.take_requests()]
        i = 0
        while i < len(reqs):
            chain = [reqs[i]]
            while chain[-1].flags & TxFlags.MORE_DATA:
                if len(chain) >= MAX_SLOTS:
                    raise NetbackError(f"a packet of more than {MAX_SLOTS} slots")
                if i + len(chain) >= len(reqs):
                    # Linux's netback: a packet needing more slots than published.
                    raise NetbackError("a packet continues beyond the published requests")
                chain.append(reqs[i + len(chain)])
            i += len(chain)
            status = self._packet(chain)
            for req in chain:
                tx.push_response(push_tx_response(TxResponse(req.id, status)))
        return tx.push_responses_and_check_notify()

    def _packet(self, chain: list[TxRequest]) -> Status:
        """One packet: the first slot's size is the packet's, the others' their own."""
        if any(req.flags & TxFlags.EXTRA_INFO for req in chain):
            raise NetbackError("extra-info slots (the backend offers no extras)")
        total = chain[0].size
        rest = sum(req.size for req in chain[1:])
        if rest > total:
            raise NetbackError(f"slots of {rest} bytes in a packet of {total}")
        if total > MTU + ETH_HEADER:
            raise NetbackError(f"frame of {total} bytes")
        sizes = [total - rest, *(req.size for req in chain[1:])]
        for req, size in zip(chain, sizes, strict=True):
            if req.offset + size > PAGE_SIZE:
                raise NetbackError(f"{size} bytes at offset {req.offset} cross the page")
        if total >= ETH_HEADER:
            parts = []
            for req, size in zip(chain, sizes, strict=True):
                part = self._copy_from(req.gref, req.offset, size)
                if part is None:
                    break
                parts.append(part)
            else:
                self._inbox.put(b"".join(parts))
                return Status.OKAY
        self._inbox.stats.rx_dropped += 1
        return Status.ERROR

    def _deliver(self, rx: BackRing) -> bool:
        """Frames for the frontend: each into a page it lent."""
        if not self._outbox:
            return False
        for raw in rx.take_requests():
            req = pull_rx_request(raw)
            self._rx_lent.append((req.id, req.gref))
        sent = 0
        stats = self._inbox.stats
        while self._outbox and self._rx_lent:
            rid, gref = self._rx_lent.popleft()
            frame = self._outbox.popleft()
            if self._copy_to(gref, frame):
                rx.push_response(push_rx_response(RxResponse(rid, 0, 0, len(frame))))
                stats.tx_packets += 1
                stats.tx_bytes += len(frame)
            else:
                rx.push_response(push_rx_response(RxResponse(rid, 0, 0, Status.ERROR)))
                stats.tx_dropped += 1
            sent += 1
        return sent > 0 and rx.push_responses_and_check_notify()

    def _closing(self) -> None:
        self._inbox.close()
        self._outbox.clear()

    def _release(self) -> None:
        for mapping in self._maps:
            self.domain.gnttab.unmap(mapping)
        self._maps.clear()

    async def disconnect(self) -> None:
        await self._stop()
        self._release()


async def _flag(xs: AsyncClient, path: str, default: int = 0) -> int:
    try:
        return int(await xs.read(path))
    except (XsError, ValueError):
        return default
