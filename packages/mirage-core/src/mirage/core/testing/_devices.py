"""Conformance tests of the small devices: sleep, clock, random and console.

The timing tests assume real time (``real_time = True``); a subclass checking a
virtual clock or sleep sets it to false and keeps the other checks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

from mirage.core.types import Clock, Console, Random, Sleep

from ._run import AsyncTests, async_test, disconnect

__all__ = ["ClockTests", "ConsoleTests", "RandomTests", "SleepTests"]

MS = 1_000_000


class SleepTests(AsyncTests):
    """Subclass and implement :meth:`make_sleep`."""

    real_time: ClassVar[bool] = True

    async def make_sleep(self) -> Sleep:
        raise NotImplementedError

    @asynccontextmanager
    async def sleep(self) -> AsyncIterator[Sleep]:
        device = await self.make_sleep()
        try:
            yield device
        finally:
            await disconnect(device)

    @async_test
    async def test_sleep_zero(self) -> None:
        async with self.sleep() as s:
            await s.sleep_ns(0)

    @async_test
    async def test_sleep_waits(self) -> None:
        async with self.sleep() as s:
            start = time.monotonic()
            await s.sleep_ns(30 * MS)
            if self.real_time:
                assert time.monotonic() - start >= 0.025

    @async_test
    async def test_sleeps_overlap(self) -> None:
        async with self.sleep() as s:
            start = time.monotonic()
            await asyncio.gather(*(s.sleep_ns(200 * MS) for _ in range(5)))
            if self.real_time:
                assert time.monotonic() - start < 0.9, "sleeps must not block the loop"


class ClockTests(AsyncTests):
    """Subclass and implement :meth:`make_clock`."""

    real_time: ClassVar[bool] = True
    max_skew: ClassVar[float] = 5.0
    """How far ``now()`` may be from the host's time, in seconds, if ``real_time``."""

    async def make_clock(self) -> Clock:
        raise NotImplementedError

    @asynccontextmanager
    async def clock(self) -> AsyncIterator[Clock]:
        device = await self.make_clock()
        try:
            yield device
        finally:
            await disconnect(device)

    @async_test
    async def test_now(self) -> None:
        async with self.clock() as clock:
            now = clock.now()
            assert isinstance(now, float)
            if self.real_time:
                assert abs(now - time.time()) < self.max_skew

    @async_test
    async def test_elapsed_is_monotonic(self) -> None:
        async with self.clock() as clock:
            readings = [clock.elapsed_ns() for _ in range(1000)]
            assert all(isinstance(r, int) for r in readings)
            assert readings == sorted(readings)

    @async_test
    async def test_elapsed_advances(self) -> None:
        if not self.real_time:
            return
        async with self.clock() as clock:
            before = clock.elapsed_ns()
            await asyncio.sleep(0.03)
            assert clock.elapsed_ns() - before >= 25 * MS


class RandomTests(AsyncTests):
    """Subclass and implement :meth:`make_random`."""

    async def make_random(self) -> Random:
        raise NotImplementedError

    @asynccontextmanager
    async def random(self) -> AsyncIterator[Random]:
        device = await self.make_random()
        try:
            yield device
        finally:
            await disconnect(device)

    @async_test
    async def test_lengths(self) -> None:
        async with self.random() as rng:
            for n in (0, 1, 7, 1000):
                data = rng.generate(n)
                assert isinstance(data, bytes)
                assert len(data) == n

    @async_test
    async def test_calls_differ(self) -> None:
        async with self.random() as rng:
            draws = {rng.generate(32) for _ in range(8)}
            assert len(draws) == 8

    @async_test
    async def test_bytes_spread(self) -> None:
        async with self.random() as rng:
            data = rng.generate(8192)
            # Each of the 256 values is missing from 8192 fair bytes with p < 1e-13.
            assert len(set(data)) == 256
            ones = sum(bin(b).count("1") for b in data)
            assert abs(ones / (8 * len(data)) - 0.5) < 0.02


class ConsoleTests(AsyncTests):
    """Subclass and implement :meth:`make_console` and :meth:`console_output`."""

    async def make_console(self) -> Console:
        raise NotImplementedError

    async def console_output(self, console: Console) -> bytes:
        """Everything written to ``console`` so far, as the outside world saw it."""
        raise NotImplementedError

    @asynccontextmanager
    async def console(self) -> AsyncIterator[Console]:
        device = await self.make_console()
        try:
            yield device
        finally:
            await disconnect(device)

    @async_test
    async def test_write(self) -> None:
        async with self.console() as con:
            await con.write(b"hello ")
            await con.writev([b"wor", b"", b"ld"])
            assert await self.console_output(con) == b"hello world"

    @async_test
    async def test_log(self) -> None:
        async with self.console() as con:
            await con.log("line one")
            await con.log("caf\u00e9 \u2713")
            expected = "line one\ncaf\u00e9 \u2713\n".encode()
            assert await self.console_output(con) == expected
