"""Every interface of the package passes the same small Network kit."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile

import pytest
from network_kit import Listening, NetworkTests, frame

from mirage.core.testing import async_test
from mirage.core.types import Network
from mirage.net import PacketNetwork, SocketNetwork, Switch, TapNetwork, VnetInterface
from mirage.net.testing import inside_netns, ip, netns_skip_reason

_names = itertools.count()


class TestVnet(NetworkTests):
    async def make_pair(self) -> tuple[Network, Network]:
        switch = Switch()
        return (
            await VnetInterface.connect(switch=switch),
            await VnetInterface.connect(switch=switch),
        )

    @async_test
    async def test_named_switch_and_learning(self) -> None:
        name = f"kit-{next(_names)}"
        a = await VnetInterface.connect(switch=name)
        b = await VnetInterface.connect(switch=name)
        c = await VnetInterface.connect(switch=name)
        lb, lc = Listening(b), Listening(c)
        try:
            await a.write(frame(b"\xff" * 6, a.mac, b"broadcast"))
            assert (await lb.next())[14:] == (await lc.next())[14:] == b"broadcast"
            await b.write(frame(a.mac, b.mac, b"to a"))  # a and b now learnt
            await a.write(frame(b.mac, a.mac, b"unicast"))
            assert (await lb.next())[14:] == b"unicast"
            await asyncio.sleep(0)
            assert lc.frames.empty()
        finally:
            for listening in (lb, lc):
                await listening.stop()
            for dev in (a, b, c):
                await dev.disconnect()

    @async_test
    async def test_faults_are_seeded(self) -> None:
        async def run(seed: int) -> list[bytes]:
            switch = Switch()
            a = await VnetInterface.connect(
                switch=switch,
                loss=0.3,
                duplicate=0.2,
                corrupt=0.2,
                reorder=0.2,
                seed=seed,
                mac="02:00:00:00:00:01",
            )
            b = await VnetInterface.connect(switch=switch, mac="02:00:00:00:00:02")
            lb = Listening(b)
            for i in range(100):
                await a.write(frame(b.mac, a.mac, i.to_bytes(2, "big") * 10))
            await asyncio.sleep(0.05)
            await lb.stop()
            got = []
            while not lb.frames.empty():
                got.append(lb.frames.get_nowait())
            await a.disconnect()
            await b.disconnect()
            return got

        first, again = await run(7), await run(7)
        assert first == again
        assert 40 < len(first) < 110
        assert first != await run(8)


class TestSocketUdp(NetworkTests):
    async def make_pair(self) -> tuple[Network, Network]:
        a = await SocketNetwork.connect(local="udp:127.0.0.1:0", remote="udp:127.0.0.1:9")
        port_a = a.local_address[1]  # type: ignore[index]
        b = await SocketNetwork.connect(local="udp:127.0.0.1:0", remote=f"udp:127.0.0.1:{port_a}")
        port_b = b.local_address[1]  # type: ignore[index]
        a._remote = ("127.0.0.1", port_b)
        return a, b


class TestSocketUnix(NetworkTests):
    async def make_pair(self) -> tuple[Network, Network]:
        folder = tempfile.mkdtemp()
        pa, pb = os.path.join(folder, "a.sock"), os.path.join(folder, "b.sock")
        a = await SocketNetwork.connect(local=f"unix:{pa}", remote=f"unix:{pb}")
        b = await SocketNetwork.connect(local=f"unix:{pb}", remote=f"unix:{pa}")
        return a, b


def test_socket_address_errors() -> None:
    from mirage.net.socket import parse_address

    for bad in ("tcp:1.2.3.4:5", "udp:host", "unix:", "nothing"):
        with pytest.raises(ValueError):
            parse_address(bad)


_skip = netns_skip_reason()


@pytest.mark.skipif(_skip is not None, reason=_skip or "")
class TestTap(NetworkTests):
    """Our TAP fd on one side; an AF_PACKET socket on the kernel's tap interface on
    the other, all inside a throw-away network namespace."""

    def run(self, coro):  # type: ignore[no-untyped-def,override]
        with inside_netns():
            return super().run(coro)

    async def make_pair(self) -> tuple[Network, Network]:
        tap = await TapNetwork.connect(name="mtap0")
        assert "mtap0" in ip("link", "show", "mtap0")
        other = await PacketNetwork.connect(interface="mtap0")
        assert other.mac != tap.mac
        return tap, other


@pytest.mark.skipif(_skip is not None, reason=_skip or "")
class TestPacketVeth(NetworkTests):
    def run(self, coro):  # type: ignore[no-untyped-def,override]
        with inside_netns():
            return super().run(coro)

    async def make_pair(self) -> tuple[Network, Network]:
        ip("link", "add", "mveth0", "type", "veth", "peer", "name", "mveth1")
        a = await PacketNetwork.connect(interface="mveth0")
        b = await PacketNetwork.connect(interface="mveth1")
        for _ in range(100):  # the carrier comes up a moment after both ends
            states = [ip("link", "show", n) for n in ("mveth0", "mveth1")]
            if all("state UP" in s for s in states):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # veth drops what is sent just as the carrier comes up
        return a, b
