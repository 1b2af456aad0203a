"""The host console: standard output (and standard input) as a flow."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import BinaryIO

from mirage.core.types import FlowClosed

__all__ = ["UnixConsole"]


class UnixConsole:
    """Writes go to ``output`` (standard output), reads come from ``input``."""

    def __init__(self, output: BinaryIO, input: BinaryIO | None) -> None:
        self._out = output
        self._in = input
        self._closed = False
        self._shut = False

    @classmethod
    async def connect(
        cls, *, output: BinaryIO | None = None, input: BinaryIO | None = None
    ) -> UnixConsole:
        return cls(output or sys.stdout.buffer, input if input is not None else sys.stdin.buffer)

    async def disconnect(self) -> None:
        await self.close()

    async def read(self) -> bytes:
        if self._closed or self._in is None:
            return b""
        stream = self._in
        read1 = getattr(stream, "read1", stream.read)
        try:
            return await asyncio.to_thread(read1, 65536)
        except (OSError, ValueError):
            return b""

    async def write(self, data: bytes) -> None:
        if self._closed or self._shut:
            raise FlowClosed("console is closed")
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError) as exc:
            raise FlowClosed(str(exc)) from exc

    async def writev(self, bufs: Sequence[bytes]) -> None:
        await self.write(b"".join(bufs))

    async def log(self, line: str) -> None:
        await self.write(line.encode() + b"\n")

    async def shutdown(self) -> None:
        self._shut = True

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._out.flush()
            except (OSError, ValueError):
                pass
