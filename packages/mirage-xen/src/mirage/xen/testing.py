"""A simulated Xen machine for tests: a xenstore daemon and a simulated hypervisor.

::

    async with SimMachine() as machine:
        dom1, xs1 = await machine.domain(1)  # xenstore over the socket, as domain 0
        dom2, xs2 = await machine.guest(2)  # xenstore over its ring, as domain 2

The xenstore daemon runs as domain ``XENSTORE_DOMID`` (a xenstore stub domain), so
that tests may use domain 0 for backends. Everything lives in a fresh temporary
directory (short, so that its Unix socket path fits) and is torn down on exit.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from .sim import SimDomain, SimHypervisor
from .xenstore import AsyncClient, Perm, XenstoreDaemon, share_ring

__all__ = ["XENSTORE_DOMID", "SimMachine"]

XENSTORE_DOMID = 0x7FEF


class SimMachine:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mxen"))
        self.socket = str(self.root / "xs")
        self.hv = SimHypervisor(self.root / "hv")
        self._xenstored = self.hv.domain(XENSTORE_DOMID)
        self.daemon = XenstoreDaemon(domain=self._xenstored)
        self._domains: list[SimDomain] = [self._xenstored]
        self._clients: list[AsyncClient] = []

    async def __aenter__(self) -> SimMachine:
        await self.daemon.start(self.socket)
        return self

    async def client(self) -> AsyncClient:
        xs = await AsyncClient.open(self.socket)
        self._clients.append(xs)
        return xs

    async def domain(self, domid: int) -> tuple[SimDomain, AsyncClient]:
        """Domain ``domid`` of this machine and a xenstore client for it."""
        domain = self.hv.domain(domid)
        self._domains.append(domain)
        return domain, await self.client()

    async def guest(self, domid: int) -> tuple[SimDomain, AsyncClient]:
        """Domain ``domid``, introduced to xenstore as the toolstack does it (its home
        ``/local/domain/<domid>`` created and owned by it), with a client over its ring."""
        domain = self.hv.domain(domid)
        self._domains.append(domain)
        grant, port = share_ring(domain, XENSTORE_DOMID)
        toolstack = await self.client()
        home = f"/local/domain/{domid}"
        await toolstack.mkdir(home)
        await toolstack.set_perms(home, (Perm("n", domid),))
        await toolstack.introduce(domid, grant.refs[0], port)
        xs = await AsyncClient.open_ring(domain, grant, port)
        self._clients.append(xs)
        return domain, xs

    async def aclose(self) -> None:
        for xs in self._clients:
            await xs.close()
        await self.daemon.stop()
        for domain in self._domains:
            domain.close()
        shutil.rmtree(self.root, ignore_errors=True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
