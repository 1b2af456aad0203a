"""Pending ports and their waiters, shared by the event-channel backends.

A backend's event channels deliver fired ports through one readable file
descriptor (Linux's ``/dev/xen/evtchn``, the simulation's datagram socket). This
base keeps what both do with them: a port that fires wakes the task waiting on it,
or stays pending until someone asks; :meth:`PortWaiters.wait` reads the descriptor
from the running loop. A backend supplies only :meth:`PortWaiters._fileno` and
:meth:`PortWaiters._read_ports`.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["PortWaiters"]


class PortWaiters:
    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _fileno(self) -> int:
        """The descriptor that becomes readable when a port fires."""
        raise NotImplementedError

    def _read_ports(self) -> list[int] | None:
        """The ports of one read (perhaps none); None when nothing is left to read."""
        raise NotImplementedError

    def _drain(self) -> None:
        while (ports := self._read_ports()) is not None:
            for port in ports:
                waiter = self._waiters.pop(port, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                else:
                    self._pending.add(port)

    def pending(self, port: int) -> bool:
        self._drain()
        if port in self._pending:
            self._pending.discard(port)
            return True
        return False

    async def wait(self, port: int) -> None:
        if self.pending(port):
            return
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._stop_reading()
            loop.add_reader(self._fileno(), self._drain)
            self._loop = loop
        fut = self._waiters.get(port)
        if fut is None or fut.done():
            fut = self._waiters[port] = loop.create_future()
        try:
            await fut
        except asyncio.CancelledError:
            if self._waiters.get(port) is fut:
                del self._waiters[port]
            raise

    def _stop_reading(self) -> None:
        """Take the descriptor off the loop that reads it (before closing it)."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fileno())
