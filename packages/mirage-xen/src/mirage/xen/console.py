"""The PV console (``xen/include/public/io/console.h``), frontend and backend.

The frontend shares one page, ``struct xencons_interface``: ``in[1024]`` at 0 (the
backend writes, the guest reads), ``out[2048]`` at 1024 (the guest writes), then
``in_cons``, ``in_prod``, ``out_cons``, ``out_prod`` (``u32``) at 3072. Either end
signals the event channel after producing or consuming. The device is set up with the
xenbus handshake (:mod:`mirage.xen.xenbus`): the frontend writes ``ring-ref`` and
``port``.

:class:`ConsoleFrontend` is a mirage ``Console``; :class:`ConsoleBackend` is what
``xenconsoled`` does: it collects the guest's output and feeds it input.
"""

from __future__ import annotations

from collections.abc import Sequence

from mirage.core.types import FlowClosed

from ._bytering import ByteRing
from ._hypervisor import Domain, Grant, Mapping
from ._wakeup import Wakeup
from .ring import RingError
from .xenbus import XenbusState, read_state, wait_state, write_state
from .xenstore import AsyncClient

__all__ = ["ConsoleBackend", "ConsoleFrontend", "IN", "OUT", "IN_CONS", "OUT_CONS"]

IN, IN_SIZE = 0, 1024
OUT, OUT_SIZE = 1024, 2048
IN_CONS, IN_PROD, OUT_CONS, OUT_PROD = 3072, 3076, 3080, 3084


def _rings(memory: memoryview) -> tuple[ByteRing, ByteRing]:
    return (
        ByteRing(memory, IN, IN_SIZE, IN_CONS, IN_PROD),
        ByteRing(memory, OUT, OUT_SIZE, OUT_CONS, OUT_PROD),
    )


class _Pipe:
    """Reading one byte ring and writing the other, over one port."""

    def __init__(self, rd: ByteRing, wr: ByteRing, wakeup: Wakeup) -> None:
        self.rd, self.wr, self.wakeup = rd, wr, wakeup
        self.shut = False
        self.closed = False

    async def read(self) -> bytes:
        while not self.closed:
            event = self.wakeup.event
            data = self.rd.read(1 << 16)
            if data:
                self.wakeup.notify()
                return data
            await self.wakeup.wait(event)
        return b""

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while True:
            if self.shut or self.closed:
                raise FlowClosed("console is shut down")
            if not view:
                return
            event = self.wakeup.event
            n = self.wr.write(view)
            if n:
                view = view[n:]
                self.wakeup.notify()
                continue
            await self.wakeup.wait(event)


class ConsoleFrontend:
    """The guest's console: what it writes goes to the backend."""

    def __init__(
        self, domain: Domain, xs: AsyncClient, directory: str, grant: Grant, pipe: _Pipe
    ) -> None:
        self.domain, self.xs, self.directory = domain, xs, directory
        self._grant, self._pipe = grant, pipe

    @classmethod
    async def connect(cls, domain: Domain, xs: AsyncClient, devid: int = 0) -> ConsoleFrontend:
        directory = f"/local/domain/{domain.domid}/device/console/{devid}"
        backend = (await xs.read(f"{directory}/backend")).decode()
        backend_id = int(await xs.read(f"{directory}/backend-id"))
        await wait_state(xs, backend, {XenbusState.INIT_WAIT, XenbusState.CONNECTED})
        grant = domain.gnttab.share(backend_id, 1)
        port = domain.evtchn.bind_unbound_port(backend_id)
        await xs.write(f"{directory}/ring-ref", str(grant.refs[0]))
        await xs.write(f"{directory}/port", str(port))
        await write_state(xs, directory, XenbusState.INITIALISED)
        await wait_state(xs, backend, {XenbusState.CONNECTED})
        await write_state(xs, directory, XenbusState.CONNECTED)
        inbound, outbound = _rings(grant.memory)
        return cls(
            domain, xs, directory, grant, _Pipe(inbound, outbound, Wakeup(domain.evtchn, port))
        )

    async def read(self) -> bytes:
        """Input from the backend; ``b""`` once closed or if the backend broke the ring."""
        try:
            return await self._pipe.read()
        except RingError:
            await self.close()
            return b""

    async def write(self, data: bytes) -> None:
        try:
            await self._pipe.write(data)
        except RingError:
            await self.close()
            raise FlowClosed("the console backend broke the ring") from None

    async def writev(self, bufs: Sequence[bytes]) -> None:
        if self._pipe.shut:
            raise FlowClosed("console is shut down")
        for buf in bufs:
            await self.write(buf)

    async def log(self, line: str) -> None:
        await self.write(line.encode() + b"\n")

    async def shutdown(self) -> None:
        self._pipe.shut = True

    async def close(self) -> None:
        if self._pipe.closed:
            return
        self._pipe.closed = self._pipe.shut = True
        await self._pipe.wakeup.stop()
        await write_state(self.xs, self.directory, XenbusState.CLOSING)
        await write_state(self.xs, self.directory, XenbusState.CLOSED)
        self.domain.evtchn.unbind(self._pipe.wakeup.port)
        self.domain.gnttab.end_access(self._grant)

    async def disconnect(self) -> None:
        await self.close()


class ConsoleBackend:
    """The host's end of a guest console; :attr:`output` is all the guest wrote."""

    def __init__(
        self, domain: Domain, xs: AsyncClient, directory: str, mapping: Mapping, pipe: _Pipe
    ) -> None:
        self.domain, self.xs, self.directory = domain, xs, directory
        self._mapping, self._pipe = mapping, pipe
        self.output = bytearray()

    @classmethod
    async def serve(
        cls, domain: Domain, xs: AsyncClient, frontend_id: int, devid: int = 0
    ) -> ConsoleBackend:
        """Wait for the frontend of device ``devid`` of ``frontend_id`` and connect."""
        directory = f"/local/domain/{domain.domid}/backend/console/{frontend_id}/{devid}"
        frontend = (await xs.read(f"{directory}/frontend")).decode()
        await write_state(xs, directory, XenbusState.INIT_WAIT)
        await wait_state(xs, frontend, {XenbusState.INITIALISED, XenbusState.CONNECTED})
        ref = int(await xs.read(f"{frontend}/ring-ref"))
        remote_port = int(await xs.read(f"{frontend}/port"))
        mapping = domain.gnttab.map(frontend_id, [ref])
        port = domain.evtchn.bind_interdomain(frontend_id, remote_port)
        await write_state(xs, directory, XenbusState.CONNECTED)
        inbound, outbound = _rings(mapping.memory)
        return cls(
            domain, xs, directory, mapping, _Pipe(outbound, inbound, Wakeup(domain.evtchn, port))
        )

    async def read(self) -> bytes:
        """The guest's next output (also appended to :attr:`output`)."""
        try:
            data = await self._pipe.read()
        except RingError:
            await self._broken()
            return b""
        self.output += data
        return data

    def collect(self) -> bytes:
        """Take whatever output the guest has written so far, without waiting."""
        try:
            data = self._pipe.rd.read(1 << 16)
        except RingError:
            return b""
        if data:
            self._pipe.wakeup.notify()
            self.output += data
        return data

    async def write(self, data: bytes) -> None:
        """Input for the guest."""
        try:
            await self._pipe.write(data)
        except RingError:
            await self._broken()
            raise FlowClosed("the console frontend broke the ring") from None

    async def _broken(self) -> None:
        await self.close()

    async def state(self) -> XenbusState:
        return await read_state(self.xs, self.directory)

    async def close(self) -> None:
        if self._pipe.closed:
            return
        self._pipe.closed = self._pipe.shut = True
        await self._pipe.wakeup.stop()
        await write_state(self.xs, self.directory, XenbusState.CLOSED)
        self.domain.evtchn.unbind(self._pipe.wakeup.port)
        self.domain.gnttab.unmap(self._mapping)
