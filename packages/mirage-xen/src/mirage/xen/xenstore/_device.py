"""xenstore through Linux's ``/dev/xen/xenbus``: how a guest reaches xenstored.

Inside a Linux domain there is no xenstored socket; the kernel's xenbus driver
offers a character device that carries the same wire protocol: whole messages are
written to it, replies and watch events are read from it. libxenstore falls back to
it when the socket is absent, and so does :meth:`AsyncClient.open`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat

__all__ = ["XENBUS_DEVICE", "DeviceTransport", "is_device"]

XENBUS_DEVICE = "/dev/xen/xenbus"


def is_device(path: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


class DeviceTransport:
    """Reader and writer (as :class:`AsyncClient` wants them) over a file
    descriptor that carries xenstore messages: the xenbus device."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        os.set_blocking(fd, False)
        self._pending = bytearray()
        self._closed = False

    @classmethod
    def open(cls, path: str = XENBUS_DEVICE) -> DeviceTransport:
        return cls(os.open(path, os.O_RDWR | os.O_CLOEXEC))

    async def read(self, n: int) -> bytes:
        loop = asyncio.get_running_loop()
        while not self._closed:
            try:
                return os.read(self._fd, n)
            except (BlockingIOError, InterruptedError):
                pass
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self._fd, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(self._fd)
        return b""

    def write(self, data: bytes) -> None:
        self._pending += data
        self._push()

    def _push(self) -> None:
        while self._pending:
            try:
                n = os.write(self._fd, self._pending)
            except (BlockingIOError, InterruptedError):
                return
            del self._pending[:n]

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending and not self._closed:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_writer(self._fd, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_writer(self._fd)
            self._push()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                os.close(self._fd)

    async def wait_closed(self) -> None:
        return None
