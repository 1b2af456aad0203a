"""Name resolution through the host's resolver."""

from __future__ import annotations

import asyncio
import socket

__all__ = ["HostResolver"]


class HostResolver:
    @classmethod
    async def connect(cls) -> HostResolver:
        return cls()

    async def disconnect(self) -> None:
        pass

    async def getaddrinfo(self, name: str) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise LookupError(f"cannot resolve {name!r}: {exc.strerror}") from None
        seen: dict[str, None] = {}
        for info in infos:
            seen.setdefault(str(info[4][0]), None)
        return list(seen)
