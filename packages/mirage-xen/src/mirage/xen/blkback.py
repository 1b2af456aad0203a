"""blkback: serves a host file to a blkfront over the shared ring.

Theory of operation. :meth:`Blkback.serve` publishes the disk (``sectors``,
``sector-size``, ``info``, ``mode``, ``feature-flush-cache``) and moves to InitWait,
waits for the frontend's ``ring-ref`` and ``event-channel``, maps the ring, binds the
port and moves to Connected. Its task then takes requests, reads or writes the file
through the granted data pages (mapped once and kept, by reference), and pushes one
response per request. A request it cannot decode or serve gets an error response; a
frontend that publishes an impossible ring index gets the device Closed. When the
frontend moves to Closing or Closed, the backend closes too.
"""

from __future__ import annotations

import logging
import os

from ._backend import BackendDevice, locate
from ._hypervisor import Domain, HypervisorError, Mapping
from ._wakeup import Wakeup
from .blkif import (
    REQUEST_SIZE,
    RESPONSE_SIZE,
    SECTOR,
    VDISK_READONLY,
    BlkifDecodeError,
    Op,
    Request,
    Response,
    Status,
    pull_request,
    push_response,
)
from .ring import BackRing, RingError, SharedRing
from .xenbus import XenbusState, wait_state, write_state
from .xenstore import AsyncClient

__all__ = ["Blkback"]

log = logging.getLogger("mirage.xen.blkback")


class Blkback(BackendDevice):
    def __init__(
        self,
        domain: Domain,
        xs: AsyncClient,
        directory: str,
        *,
        frontend: str,
        frontend_id: int,
        fd: int,
        sectors: int,
        read_only: bool,
    ) -> None:
        super().__init__(domain, xs, directory, frontend, frontend_id)
        self.fd, self.sectors, self.read_only = fd, sectors, read_only
        self._pages: dict[int, Mapping] = {}
        self._ring_map: Mapping | None = None
        self.requests = 0

    @classmethod
    async def serve(
        cls,
        domain: Domain,
        xs: AsyncClient,
        frontend_id: int,
        devid: int,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
    ) -> Blkback:
        """Connect device ``devid`` of ``frontend_id`` to the file ``path``."""
        directory, frontend = await locate(domain, xs, "vbd", frontend_id, devid)
        fd = os.open(path, os.O_RDONLY if read_only else os.O_RDWR)
        sectors = os.fstat(fd).st_size // SECTOR
        self = cls(
            domain,
            xs,
            directory,
            frontend=frontend,
            frontend_id=frontend_id,
            fd=fd,
            sectors=sectors,
            read_only=read_only,
        )
        try:
            await self._handshake()
        except BaseException:
            os.close(fd)
            raise
        return self

    async def _handshake(self) -> None:
        xs, d = self.xs, self.directory
        await xs.write(f"{d}/sectors", str(self.sectors))
        await xs.write(f"{d}/sector-size", str(SECTOR))
        await xs.write(f"{d}/info", str(VDISK_READONLY if self.read_only else 0))
        await xs.write(f"{d}/mode", "r" if self.read_only else "w")
        await xs.write(f"{d}/feature-flush-cache", "1")
        await write_state(xs, d, XenbusState.INIT_WAIT)
        await wait_state(xs, self.frontend, {XenbusState.INITIALISED, XenbusState.CONNECTED})
        ref = int(await xs.read(f"{self.frontend}/ring-ref"))
        remote_port = int(await xs.read(f"{self.frontend}/event-channel"))
        protocol = (
            await xs.read(f"{self.frontend}/protocol")
            if await xs.exists(f"{self.frontend}/protocol")
            else b"x86_64-abi"
        )
        if protocol != b"x86_64-abi":
            await write_state(xs, d, XenbusState.CLOSED)
            raise HypervisorError(f"unsupported blkif protocol {protocol!r}")
        self._ring_map = self.domain.gnttab.map(self.frontend_id, [ref])
        wakeup = self._bind(remote_port)
        await write_state(xs, d, XenbusState.CONNECTED)
        ring = BackRing(SharedRing(self._ring_map.memory, max(REQUEST_SIZE, RESPONSE_SIZE)))
        self._start(self._run(ring, wakeup))

    async def _run(self, ring: BackRing, wakeup: Wakeup) -> None:
        try:
            while True:
                event = wakeup.event
                for raw in ring.take_requests():
                    ring.push_response(self._serve(raw))
                    self.requests += 1
                if ring.push_responses_and_check_notify():
                    wakeup.notify()
                if not ring.final_check_for_requests():
                    await wakeup.wait(event)
        except RingError as err:
            log.warning("frontend %d broke the ring: %s", self.frontend_id, err)
            await self._shut(XenbusState.CLOSED)

    def _page(self, gref: int) -> memoryview:
        mapping = self._pages.get(gref)
        if mapping is None:
            mapping = self._pages[gref] = self.domain.gnttab.map(self.frontend_id, [gref])
        return mapping.memory

    def _serve(self, raw: bytes) -> bytes:
        try:
            req = pull_request(raw)
        except BlkifDecodeError:
            # The id is still where the frontend put it.
            return push_response(
                Response(int.from_bytes(raw[8:16], "little"), raw[0], Status.ERROR)
            )
        return push_response(Response(req.id, req.operation, self._status(req)))

    def _status(self, req: Request) -> int:
        if req.operation in (Op.FLUSH_DISKCACHE, Op.WRITE_BARRIER):
            os.fsync(self.fd)
            if req.operation == Op.FLUSH_DISKCACHE or not req.segments:
                return Status.OKAY
        if req.operation not in (Op.READ, Op.WRITE, Op.WRITE_BARRIER):
            return Status.EOPNOTSUPP
        writing = req.operation != Op.READ
        total = sum(s.sectors for s in req.segments)
        if (writing and self.read_only) or req.sector_number + total > self.sectors:
            return Status.ERROR
        offset = req.sector_number * SECTOR
        try:
            for seg in req.segments:
                page = self._page(seg.gref)
                start, length = seg.first_sect * SECTOR, seg.sectors * SECTOR
                if writing:
                    os.pwrite(self.fd, page[start : start + length], offset)
                else:
                    data = os.pread(self.fd, length, offset)
                    page[start : start + len(data)] = data
                offset += length
        except (HypervisorError, OSError) as err:
            log.warning("request %d failed: %s", req.id, err)
            return Status.ERROR
        if req.operation == Op.WRITE_BARRIER:
            os.fsync(self.fd)
        return Status.OKAY

    async def close(self) -> None:
        await self._stop()
        for mapping in self._pages.values():
            self.domain.gnttab.unmap(mapping)
        self._pages.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
