"""mirage devices over Xen's split drivers: what ``config.py`` selects.

Each ``connect`` takes the runtime arguments of the Xen environment: the xenstore
socket, and the hypervisor. Only the simulated hypervisor (:mod:`mirage.xen.sim`)
exists so far, so ``xen_sim`` (its directory) and ``xen_domid`` (this domain's id)
are required; a backend over Linux's ``/dev/xen`` devices would make them optional.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from mirage.core.types import BlockInfo

from ._hypervisor import Domain, HypervisorError
from .blkfront import Blkfront
from .console import ConsoleFrontend
from .xenstore import AsyncClient

__all__ = ["XenBlock", "XenConsole", "close_environment", "open_environment"]


_Key = tuple[str | None, str, int]
_shared: dict[_Key, tuple[Domain, AsyncClient, int]] = {}
_opening: dict[_Key, asyncio.Future[None]] = {}


async def open_environment(
    xenstore: str | None, xen_sim: str | None, xen_domid: int | None
) -> tuple[Domain, AsyncClient]:
    """This domain and a xenstore client, from the runtime arguments. Devices of one
    artifact share them (a domain exists once per process); each device gives them
    back with :func:`close_environment`."""
    if xen_sim is None or xen_domid is None:
        raise HypervisorError(
            "no hypervisor backend: only the simulated one exists; pass --xen-sim and --xen-domid"
        )
    key = (xenstore, str(xen_sim), xen_domid)
    while key in _opening:  # another device of this process is opening it
        await asyncio.shield(_opening[key])
    entry = _shared.get(key)
    if entry is None:
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _opening[key] = opened
        try:
            from .sim import SimHypervisor

            domain = SimHypervisor(xen_sim).domain(xen_domid)
            try:
                xs = await AsyncClient.open(xenstore)
            except BaseException:
                domain.close()
                raise
            entry = (domain, xs, 0)
        finally:
            del _opening[key]
            opened.set_result(None)
    _shared[key] = (entry[0], entry[1], entry[2] + 1)
    return entry[0], entry[1]


async def close_environment(domain: Domain, xs: AsyncClient) -> None:
    for key, (d, x, users) in list(_shared.items()):
        if d is domain and x is xs:
            if users > 1:
                _shared[key] = (d, x, users - 1)
                return
            del _shared[key]
    await xs.close()
    domain.close()


class XenConsole:
    """The PV console of this domain, as a mirage ``Console``."""

    def __init__(self, frontend: ConsoleFrontend, domain: Domain, xs: AsyncClient) -> None:
        self._fe, self._domain, self._xs = frontend, domain, xs

    @classmethod
    async def connect(
        cls,
        devid: int = 0,
        xenstore: str | None = None,
        xen_sim: str | None = None,
        xen_domid: int | None = None,
    ) -> XenConsole:
        domain, xs = await open_environment(xenstore, xen_sim, xen_domid)
        return cls(await ConsoleFrontend.connect(domain, xs, devid), domain, xs)

    async def read(self) -> bytes:
        return await self._fe.read()

    async def write(self, data: bytes) -> None:
        await self._fe.write(data)

    async def writev(self, bufs: Sequence[bytes]) -> None:
        await self._fe.writev(bufs)

    async def log(self, line: str) -> None:
        await self._fe.log(line)

    async def shutdown(self) -> None:
        await self._fe.shutdown()

    async def close(self) -> None:
        await self._fe.close()

    async def disconnect(self) -> None:
        await self._fe.close()
        await close_environment(self._domain, self._xs)


class XenBlock:
    """A virtual disk of this domain, as a mirage ``Block``."""

    def __init__(self, frontend: Blkfront, domain: Domain, xs: AsyncClient) -> None:
        self._fe, self._domain, self._xs = frontend, domain, xs

    @classmethod
    async def connect(
        cls,
        devid: int = 51712,
        xenstore: str | None = None,
        xen_sim: str | None = None,
        xen_domid: int | None = None,
    ) -> XenBlock:
        domain, xs = await open_environment(xenstore, xen_sim, xen_domid)
        return cls(await Blkfront.connect(domain, xs, devid), domain, xs)

    async def info(self) -> BlockInfo:
        return await self._fe.info()

    async def read(self, sector: int, count: int) -> bytes:
        return await self._fe.read(sector, count)

    async def write(self, sector: int, data: bytes) -> None:
        await self._fe.write(sector, data)

    async def disconnect(self) -> None:
        await self._fe.disconnect()
        await close_environment(self._domain, self._xs)
