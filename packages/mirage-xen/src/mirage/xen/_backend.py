"""What every backend device does besides its protocol: the xenbus bookkeeping.

A backend device lives at ``/local/domain/<ours>/backend/<kind>/<frontend>/<devid>``
in xenstore, knows its frontend's directory, binds the frontend's port and runs two
tasks: its ring task and a watch that closes the device when the frontend moves to
Closing or Closed. Closing writes Closing then the final state, once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine

from ._hypervisor import Domain, HypervisorError
from ._wakeup import Wakeup
from .xenbus import XenbusState, read_state, wait_state, write_state
from .xenstore import AsyncClient

__all__ = ["BackendDevice", "locate"]


async def locate(
    domain: Domain, xs: AsyncClient, kind: str, frontend_id: int, devid: int
) -> tuple[str, str]:
    """The backend directory of device ``devid`` of ``frontend_id`` and the frontend's
    directory, as the toolstack wrote it there."""
    directory = f"/local/domain/{domain.domid}/backend/{kind}/{frontend_id}/{devid}"
    frontend = (await xs.read(f"{directory}/frontend")).decode()
    return directory, frontend


class BackendDevice:
    def __init__(
        self, domain: Domain, xs: AsyncClient, directory: str, frontend: str, frontend_id: int
    ) -> None:
        self.domain, self.xs, self.directory = domain, xs, directory
        self.frontend, self.frontend_id = frontend, frontend_id
        self._wakeup: Wakeup | None = None
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self._shutting = False

    def _bind(self, remote_port: int) -> Wakeup:
        """Bind the frontend's port; its :class:`Wakeup`."""
        port = self.domain.evtchn.bind_interdomain(self.frontend_id, remote_port)
        self._wakeup = Wakeup(self.domain.evtchn, port)
        return self._wakeup

    def _start(self, run: Coroutine[None, None, None]) -> None:
        """Run the ring task ``run`` and the frontend's watch."""
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(run)
        self._watch = loop.create_task(self._watch_frontend())

    async def _watch_frontend(self) -> None:
        await wait_state(self.xs, self.frontend, {XenbusState.CLOSING, XenbusState.CLOSED})
        await self._shut(XenbusState.CLOSED)

    def _closing(self) -> None:
        """What a device drops when it starts closing (called once)."""

    async def _shut(self, state: XenbusState) -> None:
        if self._shutting:
            return
        self._shutting = True
        self._closing()
        with contextlib.suppress(Exception):
            await write_state(self.xs, self.directory, XenbusState.CLOSING)
            await write_state(self.xs, self.directory, state)
        self.closed.set()

    async def state(self) -> XenbusState:
        return await read_state(self.xs, self.directory)

    async def _stop(self) -> None:
        """Stop the tasks, close the device and unbind its port."""
        me = asyncio.current_task()
        for task in (self._task, self._watch):
            if task is not None and task is not me and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._shut(XenbusState.CLOSED)
        if self._wakeup is not None:
            await self._wakeup.stop()
            with contextlib.suppress(HypervisorError):
                self.domain.evtchn.unbind(self._wakeup.port)
            self._wakeup = None
