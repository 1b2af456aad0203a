"""DHCP against a real server: dnsmasq on the kernel side of a TAP device in a
throw-away network namespace leases our stack an address, renews it and gets it back
on release; the kernel then reaches us at the leased address."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mirage.core.testing import run
from mirage.net import TapNetwork, format_mac
from mirage.net.testing import inside_netns, ip, netns_skip_reason
from mirage.tcpip.dhcp import DhcpConfig, DhcpState
from mirage.tcpip.stack import DirectStack

_skip = netns_skip_reason() or (
    None if shutil.which("dnsmasq") else "needs dnsmasq (apt package dnsmasq-base)"
)
pytestmark = pytest.mark.skipif(_skip is not None, reason=_skip or "")

SERVER = "10.9.4.1"
TAP = "mtap0"


@contextmanager
def dnsmasq(leasefile: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--port=0",  # no DNS, DHCP only
            f"--interface={TAP}",
            "--bind-interfaces",
            "--user=root",
            "--pid-file",
            f"--dhcp-leasefile={leasefile}",
            "--dhcp-range=10.9.4.50,10.9.4.59,255.255.255.0,5m",
            f"--dhcp-option=option:router,{SERVER}",
            f"--dhcp-option=option:dns-server,{SERVER},10.9.4.2",
            "--dhcp-authoritative",
            "--no-ping",  # no ICMP check before offering (saves seconds)
            "--log-dhcp",
            "--log-facility=-",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(5)


def test_lease_renew_release_against_dnsmasq() -> None:
    async def main(leasefile: Path) -> None:
        net = await TapNetwork.connect(name=TAP)
        ip("addr", "add", f"{SERVER}/24", "dev", TAP)
        with dnsmasq(leasefile) as server:
            await asyncio.sleep(0.3)  # dnsmasq binds its socket
            assert server.poll() is None, server.stdout and server.stdout.read()
            stack = await DirectStack.connect(
                network=net,
                dhcp=True,
                dhcp_timeout=20,
                dhcp_config=DhcpConfig(hostname="mirage", arp_check=False),
            )
            try:
                lease = stack.lease
                assert lease is not None
                leased = str(stack.interface.ip)
                assert leased.startswith("10.9.4.5"), leased
                assert str(stack.interface) == f"{leased}/24"
                assert stack.gateway == bytes((10, 9, 4, 1))
                assert stack.dns_servers == (SERVER, "10.9.4.2")
                assert lease.lease_time == 300
                assert (lease.renewal_time, lease.rebinding_time) == (150, 262)  # sent by dnsmasq
                text = leasefile.read_text()
                assert format_mac(stack.mac) in text and leased in text and "mirage" in text
                # The kernel reaches the leased address: TCP to a listener of ours.
                got = asyncio.get_running_loop().create_future()

                async def handler(flow: object) -> None:
                    got.set_result(await flow.read())  # type: ignore[attr-defined]
                    await flow.close()  # type: ignore[attr-defined]

                await stack.tcp.listen(7000, handler)
                _reader, writer = await asyncio.open_connection(leased, 7000)
                writer.write(b"over a leased address")
                await writer.drain()
                assert await asyncio.wait_for(got, 5) == b"over a leased address"
                writer.close()
                # Renewal (unicast to the server), as at T1: a fresh ACK, same address.
                assert stack.dhcp is not None
                stack.renew_dhcp()
                assert stack.dhcp.state is DhcpState.RENEWING
                for _ in range(200):
                    if stack.dhcp.state is DhcpState.BOUND:
                        break
                    await asyncio.sleep(0.02)
                assert stack.dhcp.state is DhcpState.BOUND
                assert stack.dhcp.stats.leases == 2
                assert str(stack.interface.ip) == leased
            finally:
                await stack.disconnect()
            # The release reached dnsmasq: the lease is gone from its file.
            for _ in range(100):
                if leased not in leasefile.read_text():
                    break
                await asyncio.sleep(0.02)
            assert leased not in leasefile.read_text()
        await net.disconnect()

    with tempfile.TemporaryDirectory() as tmp, inside_netns():
        run(main(Path(tmp) / "leases"), 40)


def test_no_server_times_out() -> None:
    async def main() -> None:
        net = await TapNetwork.connect(name=TAP)
        try:
            with pytest.raises(TimeoutError):
                await DirectStack.connect(
                    network=net, ipv4="dhcp", dhcp_timeout=0.5, dhcp_config=DhcpConfig()
                )
        finally:
            await net.disconnect()

    with inside_netns():
        run(main(), 10)


def test_an_address_in_use_is_declined() -> None:
    """dnsmasq offers an address the kernel already uses: our ARP probe finds the
    kernel there, we DECLINE, and the next lease is another address."""

    async def main(leasefile: Path) -> None:
        net = await TapNetwork.connect(name=TAP)
        ip("addr", "add", f"{SERVER}/24", "dev", TAP)
        ip("addr", "add", "10.9.4.50/24", "dev", TAP)  # taken, unknown to dnsmasq
        mac = format_mac(net.mac)
        with dnsmasq(leasefile, f"--dhcp-host={mac},10.9.4.50"):
            await asyncio.sleep(0.3)
            stack = await DirectStack.connect(
                network=net,
                dhcp=True,
                dhcp_timeout=40,
                dhcp_config=DhcpConfig(decline_wait=0.5),
            )
            try:
                assert stack.dhcp is not None
                assert stack.dhcp.stats.declines >= 1
                assert str(stack.interface.ip) != "10.9.4.50"
                assert str(stack.interface.ip).startswith("10.9.4.5")
            finally:
                await stack.disconnect()
        await net.disconnect()

    with tempfile.TemporaryDirectory() as tmp, inside_netns():
        run(main(Path(tmp) / "leases"), 60)
