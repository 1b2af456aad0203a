"""xenstore over a shared page: how domains, not sockets, reach xenstored.

The page is ``struct xenstore_domain_interface`` (``xs_wire.h``): ``req[1024]`` at 0
(the guest writes requests), ``rsp[1024]`` at 1024 (xenstored writes replies and watch
events), then ``u32`` ``req_cons``, ``req_prod``, ``rsp_cons``, ``rsp_prod`` at 2048,
``server_features`` at 2064, ``connection`` at 2068 and ``error`` at 2072. Either end
signals the event channel after producing or consuming.

The guest shares the page and an unbound port with the xenstore domain; the toolstack
tells xenstored with INTRODUCE (domain, page, port), and xenstored maps the page and
binds the port. In the simulated hypervisor the page is named by its grant
reference; on a real Xen, INTRODUCE names the page's frame, and the toolstack has put
the page in the guest's grant table at ``GNTTAB_RESERVED_XENSTORE`` (1), which is
what xenstored maps (as Xen's own xenstored does, without privileged foreign mapping).
Once bound, the port is signalled: a guest whose xenstore is connected late (a
dom0less guest of Xen on ARM, set up by ``init-dom0less``) waits for that. An
impossible ring index makes xenstored write ``error = 2`` (``XENSTORE_ERROR_RINGIDX``)
and stop serving the domain, as Xen's does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from mirage.xen._bytering import ByteRing
from mirage.xen._hypervisor import Domain, Grant, Mapping
from mirage.xen._wakeup import Wakeup
from mirage.xen.ring import RingError

__all__ = [
    "ERROR_PROTO",
    "ERROR_RINGIDX",
    "ReconnectRequested",
    "RingConnection",
    "RingTransport",
    "RSP",
    "REQ",
    "share_ring",
]

REQ, RSP, SIZE = 0, 1024, 1024
REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD = 2048, 2052, 2056, 2060
SERVER_FEATURES, CONNECTION, ERROR = 2064, 2068, 2072
ERROR_NONE, ERROR_COMM, ERROR_RINGIDX, ERROR_PROTO = 0, 1, 2, 3
FEATURE_RECONNECTION, FEATURE_ERROR = 1, 2
CONNECTED, RECONNECT = 0, 1


class ReconnectRequested(Exception):
    """The guest set the page's connection field to ``XENSTORE_RECONNECT``."""


def _get(memory: memoryview, off: int) -> int:
    return int.from_bytes(memory[off : off + 4], "little")


def _set(memory: memoryview, off: int, value: int) -> None:
    memory[off : off + 4] = value.to_bytes(4, "little")


def _rings(memory: memoryview) -> tuple[ByteRing, ByteRing]:
    return (
        ByteRing(memory, REQ, SIZE, REQ_CONS, REQ_PROD),
        ByteRing(memory, RSP, SIZE, RSP_CONS, RSP_PROD),
    )


GNTTAB_RESERVED_XENSTORE = 1
"""The grant reference under which a guest's xenstore page is shared (``grant_table.h``)."""


class _RingPipe:
    """Bytes out through one ring, in through the other, over one port."""

    def __init__(
        self,
        rd: ByteRing,
        wr: ByteRing,
        wakeup: Wakeup,
        interrupt: Callable[[], bool] | None = None,
    ) -> None:
        self.rd, self.wr, self.wakeup = rd, wr, wakeup
        self.interrupt = interrupt
        self.pending = bytearray()
        self.closed = False
        self._flusher: asyncio.Task[None] | None = None

    async def read(self, n: int) -> bytes:
        while not self.closed:
            event = self.wakeup.event
            if self.interrupt is not None and self.interrupt():
                raise ReconnectRequested("the guest asked to reconnect the ring")
            data = self.rd.read(n)
            if data:
                self.wakeup.notify()
                return data
            await self.wakeup.wait(event)
        return b""

    def write(self, data: bytes) -> None:
        self.pending += data
        self._push()
        if self.pending and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    def _push(self) -> None:
        n = self.wr.write(self.pending)
        if n:
            del self.pending[:n]
            self.wakeup.notify()

    async def _flush(self) -> None:
        with contextlib.suppress(RingError):
            while self.pending and not self.closed:
                event = self.wakeup.event
                self._push()
                if self.pending:
                    await self.wakeup.wait(event)

    async def drain(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            await self._flusher

    def discard(self) -> None:
        """Forget what waits to be written."""
        self.pending.clear()
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None

    async def stop(self) -> None:
        self.closed = True
        if self._flusher is not None:
            self._flusher.cancel()
        await self.wakeup.stop()


class RingTransport:
    """The guest's end, shaped like asyncio's stream reader and writer, for
    :class:`~mirage.xen.xenstore.AsyncClient`."""

    def __init__(self, domain: Domain, grant: Grant, port: int) -> None:
        self.domain, self.grant, self.port = domain, grant, port
        req, rsp = _rings(grant.memory)
        self._pipe = _RingPipe(rsp, req, Wakeup(domain.evtchn, port))

    async def read(self, n: int) -> bytes:
        try:
            return await self._pipe.read(n)
        except RingError as err:
            raise ConnectionError(f"xenstored broke the ring: {err}") from None

    def write(self, data: bytes) -> None:
        self._pipe.write(data)

    async def drain(self) -> None:
        await self._pipe.drain()

    async def reconnect(self, timeout: float = 30.0) -> None:
        """Ask xenstored to reset the ring (``XENSTORE_RECONNECT``) and wait until it
        has: empty queues, no watches or transactions left. Needs the server's
        ``XENSTORE_SERVER_FEATURE_RECONNECTION``."""
        memory = self.grant.memory
        if not _get(memory, SERVER_FEATURES) & FEATURE_RECONNECTION:
            raise ConnectionError("xenstored does not offer ring reconnection")
        self._pipe.discard()
        _set(memory, CONNECTION, RECONNECT)
        self._pipe.wakeup.notify()
        async with asyncio.timeout(timeout):
            while _get(memory, CONNECTION) != CONNECTED:
                event = self._pipe.wakeup.event
                if _get(memory, CONNECTION) == CONNECTED:
                    break
                await self._pipe.wakeup.wait(event)

    def close(self) -> None:
        self._pipe.closed = True

    async def wait_closed(self) -> None:
        await self._pipe.stop()
        self.domain.evtchn.unbind(self.port)
        self.domain.gnttab.end_access(self.grant)


def share_ring(domain: Domain, xenstore_domid: int) -> tuple[Grant, int]:
    """The guest's part of the setup: a zeroed page and an unbound port for xenstored.
    The toolstack then introduces the domain with the page's reference and the port."""
    grant = domain.gnttab.share(xenstore_domid, 1)
    port = domain.evtchn.bind_unbound_port(xenstore_domid)
    return grant, port


class RingConnection:
    """xenstored's end of one domain's ring."""

    def __init__(self, domain: Domain, domid: int, ref: int, remote_port: int) -> None:
        if getattr(domain, "introduce_names_frames", False):
            ref = GNTTAB_RESERVED_XENSTORE
        mapping = domain.gnttab.map(domid, [ref])
        try:
            port = domain.evtchn.bind_interdomain(domid, remote_port)
        except BaseException:
            domain.gnttab.unmap(mapping)
            raise
        self._attach(domain, domid, mapping.memory, port, mapping)
        domain.evtchn.notify(port)

    @classmethod
    def local(
        cls, domain: Domain, domid: int, memory: memoryview, remote_port: int
    ) -> RingConnection:
        """The ring of a page xenstored has without a grant: dom0's kernel's, which
        Linux offers to a xenstored in dom0 through ``/dev/xen/xenbus_backend``
        (see :func:`mirage.xen.linux.xenbus_backend_ring`)."""
        self = cls.__new__(cls)
        port = domain.evtchn.bind_interdomain(domid, remote_port)
        self._attach(domain, domid, memory, port, None)
        # The dom0 kernel's xenbus counts xenstored as started at its first event
        # (then probes its backends and frontends), as Xen's xenstored sends at start.
        domain.evtchn.notify(port)
        return self

    def _attach(
        self, domain: Domain, domid: int, memory: memoryview, port: int, mapping: Mapping | None
    ) -> None:
        self.domid = domid
        self.domain = domain
        self.memory = memory
        self.mapping = mapping
        self.port = port
        req, rsp = _rings(memory)
        self._pipe = _RingPipe(
            req,
            rsp,
            Wakeup(domain.evtchn, self.port),
            lambda: _get(memory, CONNECTION) == RECONNECT,
        )
        # Advertised before anything is read or written, as xenstore-ring.txt asks;
        # a page that starts in RECONNECT (set by the toolstack) is connected now.
        _set(memory, SERVER_FEATURES, FEATURE_RECONNECTION | FEATURE_ERROR)
        if _get(memory, CONNECTION) == RECONNECT:
            self.reset()

    def reset(self) -> None:
        """The server's part of a reconnection: empty both queues, mark the ring
        connected and signal. (The daemon drops the connection's watches and
        transactions.)"""
        memory = self.memory
        self._pipe.discard()
        for off in (REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD):
            _set(memory, off, 0)
        _set(memory, CONNECTION, CONNECTED)
        self._pipe.wakeup.notify()

    def set_error(self, error: int) -> None:
        _set(self.memory, ERROR, error)

    async def read(self) -> bytes:
        """The next request bytes; ``b""`` once the connection is stopped. A broken
        ring index sets the page's error field and raises :class:`RingError`."""
        try:
            return await self._pipe.read(SIZE)
        except RingError:
            self.memory[ERROR : ERROR + 4] = ERROR_RINGIDX.to_bytes(4, "little")
            raise

    def write(self, data: bytes) -> None:
        try:
            self._pipe.write(data)
        except RingError:
            self.memory[ERROR : ERROR + 4] = ERROR_RINGIDX.to_bytes(4, "little")

    def is_closing(self) -> bool:
        return self._pipe.closed

    async def stop(self) -> None:
        await self._pipe.stop()
        with contextlib.suppress(Exception):
            self.domain.evtchn.unbind(self.port)
        if self.mapping is not None:
            self.domain.gnttab.unmap(self.mapping)
