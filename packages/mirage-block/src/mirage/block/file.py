"""``file-block``: a block device over a file (or a block device) of the host.

The device has as many whole sectors as the file has bytes; a trailing partial
sector is not used. With ``size``, a missing file is created (sparse, zero-filled)
with that many bytes; an existing file keeps its size. I/O is blocking
``pread``/``pwrite``; ``disconnect`` syncs a writable device to storage.
"""

from __future__ import annotations

import os
import stat

from mirage.core.types import BlockError, BlockInfo

from ._sectors import check_read, check_write

__all__ = ["FileBlock"]


class FileBlock:
    """A ``block`` device over the host file ``path``."""

    def __init__(self, fd: int, info: BlockInfo) -> None:
        self._fd = fd
        self._info = info

    @classmethod
    async def connect(
        cls,
        *,
        path: str,
        sector_size: int = 512,
        read_only: bool = False,
        size: int | None = None,
    ) -> FileBlock:
        if sector_size <= 0:
            raise ValueError(f"bad sector size {sector_size}")
        if size is not None and not os.path.exists(path):
            if size < 0:
                raise ValueError(f"bad size {size}")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
        fd = os.open(path, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
        try:
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
                raise BlockError(f"{path!r} is neither a file nor a block device")
            length = os.lseek(fd, 0, os.SEEK_END)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, BlockInfo(not read_only, sector_size, length // sector_size))

    async def disconnect(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            if self._info.read_write:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _fileno(self) -> int:
        if self._fd < 0:
            raise BlockError("the device is disconnected")
        return self._fd

    async def info(self) -> BlockInfo:
        return self._info

    async def read(self, sector: int, count: int) -> bytes:
        offset, length = check_read(self._info, sector, count)
        fd = self._fileno()
        chunks = []
        while length:
            chunk = os.pread(fd, length, offset)
            if not chunk:
                raise BlockError(f"the file ended at byte {offset}: was it truncated?")
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    async def write(self, sector: int, data: bytes) -> None:
        offset = check_write(self._info, sector, data)
        fd = self._fileno()
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view = view[written:]
            offset += written
