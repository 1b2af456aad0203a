"""An asyncio event loop on a virtual clock, for in-process networks (``vnet``).

Theory of operation: asyncio's loop asks its selector to wait until the next timer
is due. :class:`_SkippingSelector` never waits: it polls the real selector and, when
nothing is ready, moves the loop's clock forward by the time the loop wanted to
sleep, so the next timer is due at once. Sleeps, timeouts and a stack's timers then
cost no wall-clock time, and a run is as deterministic as its code. Real file
descriptors (sockets, TAP devices) still work, but a loop with nothing scheduled
and only descriptors to wait on stops with an error instead of sleeping forever.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")


class _SkippingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.clock = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events:
            return events
        if timeout is None:
            raise RuntimeError("virtual time: nothing scheduled, the loop would wait forever")
        self.clock += max(timeout, 0.0)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` only moves when it would otherwise
    sleep: then it jumps to the next timer."""

    def __init__(self) -> None:
        self._virtual = _SkippingSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.clock


def run_virtual(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualTimeLoop`; ``timeout`` is
    in virtual seconds (``TimeoutError``)."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(bounded())
