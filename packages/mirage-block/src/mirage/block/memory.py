"""``memory-block``: a zero-filled block device in memory."""

from __future__ import annotations

from mirage.core.types import BlockInfo

from ._sectors import check_read, check_write

__all__ = ["MemoryBlock"]


class MemoryBlock:
    """A ``block`` device of ``sectors`` sectors held in a ``bytearray``."""

    def __init__(self, info: BlockInfo) -> None:
        self._info = info
        self._data = bytearray(info.size_sectors * info.sector_size)

    @classmethod
    async def connect(
        cls, *, sectors: int, sector_size: int = 512, read_only: bool = False
    ) -> MemoryBlock:
        if sectors < 0 or sector_size <= 0:
            raise ValueError(f"bad geometry: {sectors} sectors of {sector_size} bytes")
        return cls(BlockInfo(not read_only, sector_size, sectors))

    async def disconnect(self) -> None:
        pass

    async def info(self) -> BlockInfo:
        return self._info

    async def read(self, sector: int, count: int) -> bytes:
        offset, length = check_read(self._info, sector, count)
        return bytes(self._data[offset : offset + length])

    async def write(self, sector: int, data: bytes) -> None:
        offset = check_write(self._info, sector, data)
        self._data[offset : offset + len(data)] = data
