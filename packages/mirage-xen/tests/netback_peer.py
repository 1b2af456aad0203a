"""The backend domain of the two-process netfront test, run as its own process.

``python netback_peer.py SIM_DIR XENSTORE_SOCKET FRONTEND_DOMID TCP_PORT``: serves
the frontend's ``vif`` 0 as domain 0, runs mirage-tcpip on it as 10.0.0.1, and on
``TCP_PORT`` answers every connection with the SHA-256 of all it received. Prints
``ready`` once listening and stops when stdin closes.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

from mirage.core.types import Flow
from mirage.tcpip.stack import DirectStack
from mirage.xen.netback import Netback
from mirage.xen.sim import SimHypervisor
from mirage.xen.xenstore import AsyncClient


async def main(root: str, socket: str, frontend: int, port: int) -> None:
    domain = SimHypervisor(root).domain(0)
    xs = await AsyncClient.open(socket)
    back = await Netback.serve(domain, xs, frontend, 0)
    stack = await DirectStack.connect(network=back, ipv4="10.0.0.1/24")

    async def digest(flow: Flow) -> None:
        h = hashlib.sha256()
        while chunk := await flow.read():
            h.update(chunk)
        await flow.write(h.digest())
        await flow.close()

    await stack.tcp.listen(port, digest)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await stack.disconnect()
    await back.disconnect()
    await xs.close()
    domain.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
