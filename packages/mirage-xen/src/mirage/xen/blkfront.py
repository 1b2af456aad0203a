"""blkfront: a mirage ``Block`` device over a Xen block backend.

Theory of operation. :meth:`Blkfront.connect` waits for the backend's InitWait,
reads the disk's size, shares the ring page and, for each ring slot, eleven data
pages (one request's worth), binds a port and moves to Initialised, then to
Connected once the backend is. A read or write is cut into requests of at most 11
pages; each takes a free slot (waiting if all are in flight), grants the backend
its pages through the slot's segments, and waits for the response with its id. One
task takes responses and completes the waiting requests.
"""

from __future__ import annotations

import asyncio
import contextlib

from mirage.core.types import BlockError, BlockInfo, BlockOutOfRange, BlockReadOnly

from ._hypervisor import PAGE_SIZE, Domain, Grant
from ._wakeup import Wakeup
from .blkif import (
    MAX_SEGMENTS,
    REQUEST_SIZE,
    RESPONSE_SIZE,
    SECTOR,
    VDISK_READONLY,
    Op,
    Request,
    Response,
    Segment,
    Status,
    pull_response,
    push_request,
)
from .ring import FrontRing, RingError, SharedRing
from .xenbus import XenbusState, wait_state, write_state
from .xenstore import AsyncClient

__all__ = ["Blkfront"]

SECTORS_PER_PAGE = PAGE_SIZE // SECTOR
CHUNK = MAX_SEGMENTS * SECTORS_PER_PAGE  # 512-byte sectors per request


class Blkfront:
    def __init__(
        self,
        domain: Domain,
        xs: AsyncClient,
        directory: str,
        *,
        info: BlockInfo,
        ring: FrontRing,
        ring_grant: Grant,
        data: Grant,
        wakeup: Wakeup,
    ) -> None:
        self.domain, self.xs, self.directory = domain, xs, directory
        self._info = info
        self._ring, self._ring_grant, self._data = ring, ring_grant, data
        self._wakeup = wakeup
        self._free: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(ring.ring.size):
            self._free.put_nowait(slot)
        self._waiting: dict[int, asyncio.Future[Response]] = {}
        self._error: BlockError | None = None
        self.closed = False
        self._task = asyncio.get_running_loop().create_task(self._responses())

    @classmethod
    async def connect(cls, domain: Domain, xs: AsyncClient, devid: int = 51712) -> Blkfront:
        """Connect virtual disk ``devid`` (51712 is ``xvda``) of this domain."""
        directory = f"/local/domain/{domain.domid}/device/vbd/{devid}"
        backend = (await xs.read(f"{directory}/backend")).decode()
        backend_id = int(await xs.read(f"{directory}/backend-id"))
        await wait_state(xs, backend, {XenbusState.INIT_WAIT, XenbusState.CONNECTED})
        sector_size = int(await xs.read(f"{backend}/sector-size"))
        sectors = int(await xs.read(f"{backend}/sectors")) * SECTOR // sector_size
        read_only = int(await xs.read(f"{backend}/info")) & VDISK_READONLY != 0
        if sector_size % SECTOR or sector_size > PAGE_SIZE:
            raise BlockError(f"unsupported sector size {sector_size}")
        gnttab = domain.gnttab
        ring_grant = gnttab.share(backend_id, 1)
        shared = SharedRing(ring_grant.memory, max(REQUEST_SIZE, RESPONSE_SIZE))
        shared.init()
        data = gnttab.share(backend_id, shared.size * MAX_SEGMENTS)
        port = domain.evtchn.bind_unbound_port(backend_id)
        await xs.write(f"{directory}/ring-ref", str(ring_grant.refs[0]))
        await xs.write(f"{directory}/event-channel", str(port))
        await xs.write(f"{directory}/protocol", "x86_64-abi")
        await write_state(xs, directory, XenbusState.INITIALISED)
        await wait_state(xs, backend, {XenbusState.CONNECTED})
        await write_state(xs, directory, XenbusState.CONNECTED)
        info = BlockInfo(not read_only, sector_size, sectors)
        wakeup = Wakeup(domain.evtchn, port)
        return cls(
            domain,
            xs,
            directory,
            info=info,
            ring=FrontRing(shared),
            ring_grant=ring_grant,
            data=data,
            wakeup=wakeup,
        )

    async def info(self) -> BlockInfo:
        return self._info

    def _check(self, sector: int, count: int) -> None:
        if self._error is not None:
            raise self._error
        if sector < 0 or count < 0 or sector + count > self._info.size_sectors:
            raise BlockOutOfRange(
                f"sectors {sector}..{sector + count} of {self._info.size_sectors}"
            )

    async def read(self, sector: int, count: int) -> bytes:
        self._check(sector, count)
        ratio = self._info.sector_size // SECTOR
        first, total = sector * ratio, count * ratio
        parts = await asyncio.gather(
            *(
                self._request(Op.READ, first + off, min(CHUNK, total - off), None)
                for off in range(0, total, CHUNK)
            )
        )
        return b"".join(parts)

    async def write(self, sector: int, data: bytes) -> None:
        ss = self._info.sector_size
        if len(data) % ss:
            raise BlockError(f"{len(data)} bytes is not a whole number of {ss}-byte sectors")
        if not self._info.read_write:
            raise BlockReadOnly("the backend offers this disk read-only")
        self._check(sector, len(data) // ss)
        ratio = ss // SECTOR
        first, total = sector * ratio, len(data) // SECTOR
        await asyncio.gather(
            *(
                self._request(Op.WRITE, first + off, n, data[off * SECTOR : (off + n) * SECTOR])
                for off in range(0, total, CHUNK)
                for n in (min(CHUNK, total - off),)
            )
        )

    async def flush(self) -> None:
        await self._request(Op.FLUSH_DISKCACHE, 0, 0, None)

    async def _request(self, op: Op, sector: int, count: int, data: bytes | None) -> bytes:
        slot = await self._free.get()
        try:
            base = slot * MAX_SEGMENTS
            pages = -(-count // SECTORS_PER_PAGE)
            memory = self._data.memory[base * PAGE_SIZE : (base + pages) * PAGE_SIZE]
            if data is not None:
                memory[: len(data)] = data
            segments = tuple(
                Segment(
                    self._data.refs[base + i],
                    0,
                    min(SECTORS_PER_PAGE, count - i * SECTORS_PER_PAGE) - 1,
                )
                for i in range(pages)
            )
            fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
            self._waiting[slot] = fut
            if self._error is not None:
                raise self._error
            self._ring.push_request(push_request(Request(op, 0, slot, sector, segments)))
            if self._ring.push_requests_and_check_notify():
                self._wakeup.notify()
            rsp = await fut
            if rsp.status != Status.OKAY:
                raise BlockError(f"the backend answered {Status(rsp.status).name} to {op.name}")
            return bytes(memory[: count * SECTOR]) if op == Op.READ else b""
        finally:
            self._waiting.pop(slot, None)
            self._free.put_nowait(slot)

    async def _responses(self) -> None:
        ring, wakeup = self._ring, self._wakeup
        try:
            while True:
                event = wakeup.event
                for raw in ring.take_responses():
                    rsp = pull_response(raw)
                    fut = self._waiting.get(rsp.id)
                    if fut is not None and not fut.done():
                        fut.set_result(rsp)
                if not ring.final_check_for_responses():
                    await wakeup.wait(event)
        except RingError as err:
            self._fail(BlockError(f"the backend broke the ring: {err}"))

    def _fail(self, error: BlockError) -> None:
        self._error = error
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(error)

    async def disconnect(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._fail(BlockError("disconnected"))
        await self._wakeup.stop()
        await write_state(self.xs, self.directory, XenbusState.CLOSING)
        await write_state(self.xs, self.directory, XenbusState.CLOSED)
        self.domain.evtchn.unbind(self._wakeup.port)
        self.domain.gnttab.end_access(self._data)
        self.domain.gnttab.end_access(self._ring_grant)
