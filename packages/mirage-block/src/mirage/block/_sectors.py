"""The checks every block device makes before touching its storage."""

from __future__ import annotations

from mirage.core.types import BlockError, BlockInfo, BlockOutOfRange, BlockReadOnly

__all__ = ["check_read", "check_write"]


def _check_range(info: BlockInfo, sector: int, count: int) -> None:
    if sector < 0 or count < 0 or sector + count > info.size_sectors:
        raise BlockOutOfRange(
            f"sectors {sector} to {sector + count - 1} are outside the device"
            f" (0 to {info.size_sectors - 1})"
        )


def check_read(info: BlockInfo, sector: int, count: int) -> tuple[int, int]:
    """The byte offset and length of a valid read."""
    _check_range(info, sector, count)
    return sector * info.sector_size, count * info.sector_size


def check_write(info: BlockInfo, sector: int, data: bytes) -> int:
    """The byte offset of a valid write."""
    if not info.read_write:
        raise BlockReadOnly("the device is read-only")
    count, rest = divmod(len(data), info.sector_size)
    if rest:
        raise BlockError(
            f"a write must be whole sectors of {info.sector_size} bytes, not {len(data)} bytes"
        )
    _check_range(info, sector, count)
    return sector * info.sector_size
