"""The direct stack passes mirage-core's StackTests over a vnet switch."""

from __future__ import annotations

import asyncio
import itertools

from mirage.core.testing import FlowTests, StackTests
from mirage.core.types import Flow, Stack
from mirage.net import Switch, VnetInterface
from mirage.tcpip.stack import DirectStack

_ports = itertools.count(20000)


class TestDirectStackOverVnet(StackTests):
    connect_timeout = 5.0

    async def make_stack(self) -> Stack:
        net = await VnetInterface.connect(switch=Switch())
        return await DirectStack.connect(network=net, ipv4="10.0.0.2/24")

    def peer_address(self) -> str:
        return "10.0.0.2"

    def free_port(self, kind: str = "tcp") -> int:
        return next(_ports)


class TestTcpFlowOverVnet(FlowTests):
    """Connections of two direct stacks on one vnet switch pass the Flow kit."""

    async def make_flow_pair(self) -> tuple[Flow, Flow]:
        switch = Switch()
        a = await DirectStack.connect(
            network=await VnetInterface.connect(switch=switch), ipv4="10.3.0.1/24"
        )
        b = await DirectStack.connect(
            network=await VnetInterface.connect(switch=switch), ipv4="10.3.0.2/24"
        )
        accepted: asyncio.Queue[Flow] = asyncio.Queue()

        async def handler(flow: Flow) -> None:
            await accepted.put(flow)
            await asyncio.Event().wait()  # keep the flow; the kit closes it

        await b.tcp.listen(9000, handler)
        client = await a.tcp.connect("10.3.0.2", 9000)
        server = await asyncio.wait_for(accepted.get(), 5)
        return client, server
