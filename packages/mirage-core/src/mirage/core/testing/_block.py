"""Conformance tests of ``block`` devices.

The contract beyond :class:`~mirage.core.types.Block`: a fresh device reads as
zeros; ``read(sector, count)`` and ``write(sector, data)`` must lie within
``[0, size_sectors)`` or raise :class:`BlockOutOfRange` (``count == 0`` at
``size_sectors`` reads ``b""``); ``data`` that is not a whole number of sectors
raises :class:`BlockError`; writing to a read-only device raises
:class:`BlockReadOnly`. A write that fails changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirage.core.types import Block, BlockError, BlockInfo, BlockOutOfRange, BlockReadOnly

from ._run import AsyncTests, async_test, disconnect

__all__ = ["BlockTests"]

SECTORS = 16

WRITES = st.lists(
    st.tuples(
        st.integers(min_value=-1, max_value=SECTORS),  # first sector
        st.integers(min_value=1, max_value=4),  # sectors written
        st.integers(min_value=0, max_value=255),  # fill pattern
    ),
    max_size=8,
)


def in_range(sector: int, count: int) -> bool:
    return sector >= 0 and sector + count <= SECTORS


def pattern(fill: int, size: int) -> bytes:
    return bytes((fill + i) % 251 for i in range(size))


class BlockTests(AsyncTests):
    """Subclass and implement :meth:`make_block` to check a ``block`` device."""

    sector_size: ClassVar[int] = 512
    """The sector size the tests ask for."""

    async def make_block(self, sectors: int, sector_size: int, read_write: bool = True) -> Block:
        """A connected, zero-filled device of ``sectors`` sectors; a fresh one each call."""
        raise NotImplementedError

    @asynccontextmanager
    async def block(self, read_write: bool = True) -> AsyncIterator[Block]:
        device = await self.make_block(SECTORS, self.sector_size, read_write)
        try:
            yield device
        finally:
            await disconnect(device)

    @async_test
    async def test_info(self) -> None:
        async with self.block() as dev:
            assert await dev.info() == BlockInfo(True, self.sector_size, SECTORS)
        async with self.block(read_write=False) as dev:
            assert await dev.info() == BlockInfo(False, self.sector_size, SECTORS)

    @async_test
    async def test_fresh_device_is_zero(self) -> None:
        async with self.block() as dev:
            assert await dev.read(0, SECTORS) == bytes(SECTORS * self.sector_size)

    @async_test
    async def test_round_trip(self) -> None:
        ss = self.sector_size
        data = pattern(7, 2 * ss)
        async with self.block() as dev:
            await dev.write(3, data)
            assert await dev.read(3, 2) == data
            assert await dev.read(4, 1) == data[ss:]
            assert await dev.read(2, 4) == bytes(ss) + data + bytes(ss)

    @async_test
    async def test_first_and_last_sector(self) -> None:
        ss = self.sector_size
        async with self.block() as dev:
            await dev.write(0, pattern(1, ss))
            await dev.write(SECTORS - 1, pattern(2, ss))
            assert await dev.read(0, 1) == pattern(1, ss)
            assert await dev.read(SECTORS - 1, 1) == pattern(2, ss)
            assert await dev.read(SECTORS, 0) == b""

    @async_test
    async def test_out_of_range(self) -> None:
        ss = self.sector_size
        async with self.block() as dev:
            for sector, count in ((SECTORS, 1), (SECTORS - 1, 2), (-1, 1), (0, SECTORS + 1)):
                with pytest.raises(BlockOutOfRange):
                    await dev.read(sector, count)
            for sector, count in ((SECTORS, 1), (SECTORS - 1, 2), (-1, 1)):
                with pytest.raises(BlockOutOfRange):
                    await dev.write(sector, pattern(3, count * ss))
            assert await dev.read(0, SECTORS) == bytes(SECTORS * ss)

    @async_test
    async def test_partial_sector_write(self) -> None:
        ss = self.sector_size
        async with self.block() as dev:
            for size in (1, ss - 1, ss + 1):
                with pytest.raises(BlockError):
                    await dev.write(0, pattern(4, size))
            assert await dev.read(0, 2) == bytes(2 * ss)

    @async_test
    async def test_read_only(self) -> None:
        async with self.block(read_write=False) as dev:
            with pytest.raises(BlockReadOnly):
                await dev.write(0, pattern(5, self.sector_size))
            assert await dev.read(0, 1) == bytes(self.sector_size)

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.differing_executors, HealthCheck.too_slow],
    )
    @given(writes=WRITES)
    def test_writes_match_model(self, writes: list[tuple[int, int, int]]) -> None:
        """Random writes, in range or not, against a ``bytearray``."""
        self.run(self._writes_match_model(writes))

    async def _writes_match_model(self, writes: list[tuple[int, int, int]]) -> None:
        ss = self.sector_size
        model = bytearray(SECTORS * ss)
        async with self.block() as dev:
            for sector, count, fill in writes:
                data = pattern(fill, count * ss)
                if in_range(sector, count):
                    await dev.write(sector, data)
                    model[sector * ss : (sector + count) * ss] = data
                else:
                    with pytest.raises(BlockOutOfRange):
                        await dev.write(sector, data)
            assert await dev.read(0, SECTORS) == model
            for sector, count, _ in writes:
                if in_range(sector, count):
                    got = await dev.read(sector, count)
                    assert got == model[sector * ss : (sector + count) * ss]
