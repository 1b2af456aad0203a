"""The memory device."""

from __future__ import annotations

import pytest

from mirage.block import MemoryBlock
from mirage.core.testing import BlockTests, run


class TestMemoryBlock(BlockTests):
    async def make_block(
        self, sectors: int, sector_size: int, read_write: bool = True
    ) -> MemoryBlock:
        return await MemoryBlock.connect(
            sectors=sectors, sector_size=sector_size, read_only=not read_write
        )


class TestMemoryBlock4k(TestMemoryBlock):
    sector_size = 4096


def test_geometry_is_checked() -> None:
    with pytest.raises(ValueError):
        run(MemoryBlock.connect(sectors=-1))
    with pytest.raises(ValueError):
        run(MemoryBlock.connect(sectors=1, sector_size=0))
