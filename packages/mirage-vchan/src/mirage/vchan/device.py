"""vchan as mirage devices: a ``flow`` to or from another domain.

``connect`` takes the Xen environment's runtime arguments, as mirage-xen's devices
do (only the simulated hypervisor exists so far).
"""

from __future__ import annotations

from collections.abc import Sequence

from mirage.xen import Domain
from mirage.xen.devices import close_environment, open_environment
from mirage.xen.xenstore import AsyncClient

from ._flow import VchanFlow

__all__ = ["VchanClient", "VchanServer"]


class _Device:
    def __init__(self, flow: VchanFlow, domain: Domain, xs: AsyncClient) -> None:
        self.flow, self._domain, self._xs = flow, domain, xs

    async def read(self) -> bytes:
        return await self.flow.read()

    async def write(self, data: bytes) -> None:
        await self.flow.write(data)

    async def writev(self, bufs: Sequence[bytes]) -> None:
        await self.flow.writev(bufs)

    async def shutdown(self) -> None:
        await self.flow.shutdown()

    async def close(self) -> None:
        await self.flow.close()

    async def disconnect(self) -> None:
        await self.flow.close()
        await close_environment(self._domain, self._xs)


class VchanServer(_Device):
    """Offers vchan ``port`` to domain ``client`` and waits for it."""

    @classmethod
    async def connect(
        cls,
        client: int,
        port: str = "mirage",
        xenstore: str | None = None,
        xen_sim: str | None = None,
        xen_domid: int | None = None,
    ) -> VchanServer:
        domain, xs = await open_environment(xenstore, xen_sim, xen_domid)
        return cls(await VchanFlow.listen(domain, xs, client, port), domain, xs)


class VchanClient(_Device):
    """Connects to vchan ``port`` offered by domain ``server``."""

    @classmethod
    async def connect(
        cls,
        server: int,
        port: str = "mirage",
        xenstore: str | None = None,
        xen_sim: str | None = None,
        xen_domid: int | None = None,
    ) -> VchanClient:
        domain, xs = await open_environment(xenstore, xen_sim, xen_domid)
        return cls(await VchanFlow.connect(domain, xs, server, port), domain, xs)
