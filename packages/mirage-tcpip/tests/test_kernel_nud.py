"""Neighbour Unreachability Detection against the Linux kernel over TAP: a stale
entry is probed by unicast solicitation and the kernel's answer makes it reachable
again; once the kernel drops the address, the probes go unanswered and the entry is
deleted."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from mirage.core.testing import run
from mirage.net import TapNetwork
from mirage.net.testing import inside_netns, ip, netns_skip_reason
from mirage.tcpip.ndp import NdpCore, NeighborState
from mirage.tcpip.stack import DirectStack

_skip = netns_skip_reason()
pytestmark = pytest.mark.skipif(_skip is not None, reason=_skip or "")

TAP = "mnud0"
KERNEL6 = "fe80::99"


def test_nud_with_the_kernel() -> None:
    async def main() -> None:
        with open("/proc/sys/net/ipv6/conf/default/accept_dad", "w") as f:
            f.write("0")
        net = await TapNetwork.connect(name=TAP)
        ip("-6", "addr", "flush", "dev", TAP)
        ip("-6", "addr", "add", f"{KERNEL6}/64", "dev", TAP, "nodad")
        kernel = ipaddress.IPv6Address(KERNEL6).packed
        ndp = NdpCore(net.mac, retrans_timer=0.2, reachable_time=0.3, delay_first_probe=0.2)
        stack = await DirectStack.connect(network=net, ipv4="10.9.11.2/24", ipv6=True, ndp=ndp)
        try:
            assert await stack.ping(KERNEL6) >= 0  # resolved by multicast solicitation
            await asyncio.sleep(0.5)
            assert ndp.state(kernel, stack.now()) is NeighborState.STALE
            assert await stack.ping(KERNEL6) >= 0  # used: DELAY, then a unicast probe
            for _ in range(100):
                if ndp.state(kernel, stack.now()) is NeighborState.REACHABLE:
                    break
                await asyncio.sleep(0.05)
            assert ndp.stats.nud_probes >= 1
            assert ndp.state(kernel, stack.now()) is NeighborState.REACHABLE
            assert ndp.stats.nud_failures == 0
            # The kernel gives the address up: the probes go unanswered.
            ip("-6", "addr", "del", f"{KERNEL6}/64", "dev", TAP)
            await asyncio.sleep(0.5)
            with pytest.raises(TimeoutError):
                await stack.ping(KERNEL6, timeout=0.3)
            for _ in range(100):
                if ndp.stats.nud_failures:
                    break
                await asyncio.sleep(0.05)
            assert ndp.stats.nud_failures == 1
            assert ndp.lookup(kernel, stack.now()) is None
        finally:
            await stack.disconnect()
            await net.disconnect()

    with inside_netns():
        run(main(), 30)
