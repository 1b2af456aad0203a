"""The virtual-time event loop: sleeps and timeouts cost no wall-clock time, and
frames over a delaying vnet link arrive at their virtual times."""

from __future__ import annotations

import asyncio

import pytest

from mirage.net import Switch, VnetInterface, run_virtual


def test_sleep_jumps_the_clock() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        await asyncio.gather(asyncio.sleep(10), asyncio.sleep(20))
        return start, loop.time()

    start, end = run_virtual(main())
    assert start == 0.0
    assert end == pytest.approx(3620.0)


def test_timeout_is_virtual() -> None:
    async def never() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        run_virtual(never(), timeout=1e6)


def test_nothing_scheduled_is_an_error_not_a_hang() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(RuntimeError, match="wait forever"):
        run_virtual(main())


def test_vnet_delay_in_virtual_time() -> None:
    async def main() -> list[tuple[float, bytes]]:
        loop = asyncio.get_running_loop()
        switch = Switch()
        a = await VnetInterface.connect(switch=switch, delay=0.25, seed=1)
        b = await VnetInterface.connect(switch=switch, seed=2)
        got: list[tuple[float, bytes]] = []
        task = asyncio.ensure_future(b.listen(lambda f: got.append((loop.time(), f))))
        frame = b.mac + a.mac + b"\x08\x00" + b"x" * 46
        await a.write(frame)
        await asyncio.sleep(1)
        await a.disconnect()
        await b.disconnect()
        await task
        return got

    got = run_virtual(main())
    assert [(round(t, 6), f[-1:]) for t, f in got] == [(0.25, b"x")]
