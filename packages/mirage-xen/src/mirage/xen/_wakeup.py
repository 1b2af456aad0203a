"""Waking every task that waits on one event-channel port.

A device has one port but several tasks may wait on it (a reader and a writer). One
pump task takes the port's events and wakes them all; each waiter then checks the
shared memory again. A waiter takes :attr:`Wakeup.event` *before* it checks, so an
event that arrives between its check and its wait is not lost; it also re-checks
every ``poll`` seconds, so that a lost event costs latency, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib

from ._hypervisor import EventChannels

__all__ = ["Wakeup"]


class Wakeup:
    def __init__(self, evtchn: EventChannels, port: int, poll: float = 1.0) -> None:
        self.evtchn, self.port, self.poll = evtchn, port, poll
        self.event = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            await self.evtchn.wait(self.port)
            self.kick()

    def kick(self) -> None:
        event, self.event = self.event, asyncio.Event()
        event.set()

    async def wait(self, event: asyncio.Event) -> None:
        # asyncio.timeout, not wait_for: before Python 3.12, wait_for can swallow a
        # cancellation that races with the event, and a loop around it never ends.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll):
                await event.wait()

    def notify(self) -> None:
        self.evtchn.notify(self.port)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.kick()
