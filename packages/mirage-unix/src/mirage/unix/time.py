"""Sleeping and clocks from the host."""

from __future__ import annotations

import asyncio
import time

__all__ = ["UnixClock", "UnixSleep"]


class UnixSleep:
    @classmethod
    async def connect(cls) -> UnixSleep:
        return cls()

    async def disconnect(self) -> None:
        pass

    async def sleep_ns(self, ns: int) -> None:
        await asyncio.sleep(max(ns, 0) / 1e9)


class UnixClock:
    @classmethod
    async def connect(cls) -> UnixClock:
        return cls()

    async def disconnect(self) -> None:
        pass

    def now(self) -> float:
        return time.time()

    def elapsed_ns(self) -> int:
        return time.monotonic_ns()
