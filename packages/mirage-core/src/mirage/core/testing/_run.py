"""Running coroutines from plain, synchronous pytest test methods.

The kit does not depend on an asyncio pytest plugin: each test method is synchronous
and runs its body with :func:`asyncio.run`, under a timeout, so a device that hangs
fails its test instead of stopping the run. A device is made inside the event loop
that uses it (``make_*`` methods are coroutines), and disconnected before the loop
closes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["AsyncTests", "async_test", "disconnect", "run"]

T = TypeVar("T")
S = TypeVar("S", bound="AsyncTests")

DEFAULT_TIMEOUT = 30.0


def run(coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
    """Run ``coro`` in a fresh event loop; an ``AssertionError`` after ``timeout`` seconds."""

    async def bounded() -> T:
        try:
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout} seconds") from None

    return asyncio.run(bounded())


async def disconnect(device: object) -> None:
    """``await device.disconnect()``: every implementation has it, though the module
    types (``KvRo``, ``Block``...) do not list it."""
    method = getattr(device, "disconnect", None)
    if method is not None:
        await method()


class AsyncTests:
    """Base of the kit's test classes: ``timeout`` bounds each test, in seconds."""

    timeout: float = DEFAULT_TIMEOUT

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return run(coro, self.timeout)


def async_test(fn: Callable[[S], Coroutine[Any, Any, None]]) -> Callable[[S], None]:
    """Make ``async def test_x(self)`` a synchronous test method that pytest collects.

    Subclasses of the kit's classes may use it for their own tests.
    """

    @functools.wraps(fn)
    def wrapper(self: S) -> None:
        self.run(fn(self))

    # pytest must see a plain function, not the coroutine function it wraps.
    del wrapper.__wrapped__
    return wrapper
