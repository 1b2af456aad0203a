"""mirage devices over Xen's split drivers: what ``config.py`` selects.

Each ``connect`` takes the runtime arguments of the Xen environment: the xenstore
socket, and the hypervisor. With ``xen_sim`` (its directory) and ``xen_domid``
(this domain's id) the devices run over the simulated hypervisor
(:mod:`mirage.xen.sim`); without them, over Linux's ``/dev/xen`` devices
(:mod:`mirage.xen.linux`), this domain's id read from xenstore's ``domid`` unless
``xen_domid`` says it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar, Generic, Protocol, Self, TypeVar

from mirage.core.types import BlockInfo, FrameCallback, NetworkStats

from ._hypervisor import Domain, HypervisorError
from .blkfront import Blkfront
from .console import ConsoleFrontend
from .netfront import Netfront
from .xenstore import AsyncClient

__all__ = ["XenBlock", "XenConsole", "XenNetwork", "close_environment", "open_environment"]


_Key = tuple[str | None, str | None, int | None]
_shared: dict[_Key, tuple[Domain, AsyncClient, int]] = {}
_opening: dict[_Key, asyncio.Future[None]] = {}


async def open_environment(
    xenstore: str | None, xen_sim: str | None, xen_domid: int | None
) -> tuple[Domain, AsyncClient]:
    """This domain and a xenstore client, from the runtime arguments. Devices of one
    artifact share them (a domain exists once per process); each device gives them
    back with :func:`close_environment`."""
    if xen_sim is not None and xen_domid is None:
        raise HypervisorError("--xen-sim needs --xen-domid (this domain's id in the simulation)")
    if xen_sim is None:
        from .linux import available

        why = available()
        if why is not None:
            raise HypervisorError(
                f"no hypervisor: {why}; pass --xen-sim and --xen-domid for the simulated one"
            )
    key: _Key = (xenstore, None if xen_sim is None else str(xen_sim), xen_domid)
    while key in _opening:  # another device of this process is opening it
        await asyncio.shield(_opening[key])
    entry = _shared.get(key)
    if entry is None:
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _opening[key] = opened
        try:
            domain: Domain
            if xen_sim is not None and xen_domid is not None:
                from .sim import SimHypervisor

                domain = SimHypervisor(xen_sim).domain(xen_domid)
                try:
                    xs = await AsyncClient.open(xenstore)
                except BaseException:
                    domain.close()
                    raise
            else:
                from .linux import LinuxDomain

                xs = await AsyncClient.open(xenstore)
                try:
                    domid = xen_domid if xen_domid is not None else int(await xs.read("domid"))
                    domain = LinuxDomain(domid)
                except BaseException:
                    await xs.close()
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


class _Frontend(Protocol):
    async def disconnect(self) -> None: ...


_F = TypeVar("_F", bound=_Frontend)


class _XenDevice(Generic[_F]):
    """A frontend of this domain over the shared Xen environment; ``connect`` opens
    (or shares) the environment, then the frontend (``_DEVID`` by default)."""

    _DEVID: ClassVar[int] = 0

    def __init__(self, frontend: _F, domain: Domain, xs: AsyncClient) -> None:
        self._fe, self._domain, self._xs = frontend, domain, xs

    @staticmethod
    async def _frontend(domain: Domain, xs: AsyncClient, devid: int) -> _F:
        raise NotImplementedError

    @classmethod
    async def connect(
        cls,
        devid: int | None = None,
        xenstore: str | None = None,
        xen_sim: str | None = None,
        xen_domid: int | None = None,
    ) -> Self:
        domain, xs = await open_environment(xenstore, xen_sim, xen_domid)
        try:
            frontend = await cls._frontend(domain, xs, cls._DEVID if devid is None else devid)
        except BaseException:
            await close_environment(domain, xs)
            raise
        return cls(frontend, domain, xs)

    async def disconnect(self) -> None:
        await self._fe.disconnect()
        await close_environment(self._domain, self._xs)


class XenConsole(_XenDevice[ConsoleFrontend]):
    """The PV console of this domain, as a mirage ``Console`` (device 0 by default)."""

    _frontend = staticmethod(ConsoleFrontend.connect)

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


class XenBlock(_XenDevice[Blkfront]):
    """A virtual disk of this domain, as a mirage ``Block`` (51712, xvda, by default)."""

    _DEVID = 51712
    _frontend = staticmethod(Blkfront.connect)

    async def info(self) -> BlockInfo:
        return await self._fe.info()

    async def read(self, sector: int, count: int) -> bytes:
        return await self._fe.read(sector, count)

    async def write(self, sector: int, data: bytes) -> None:
        await self._fe.write(sector, data)


class XenNetwork(_XenDevice[Netfront]):
    """A network interface of this domain (netfront), as a mirage ``Network`` (vif 0
    by default)."""

    _frontend = staticmethod(Netfront.connect)

    @property
    def mac(self) -> bytes:
        return self._fe.mac

    @property
    def mtu(self) -> int:
        return self._fe.mtu

    async def write(self, frame: bytes) -> None:
        await self._fe.write(frame)

    async def listen(self, callback: FrameCallback) -> None:
        await self._fe.listen(callback)

    def stats(self) -> NetworkStats:
        return self._fe.stats()
