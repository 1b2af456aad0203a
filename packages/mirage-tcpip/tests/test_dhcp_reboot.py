"""DHCP INIT-REBOOT (RFC 2131 3.2, 4.3.2, 4.4.2) in virtual time, and against dnsmasq:
a restarted client asks for its previous address again."""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from pathlib import Path

import pytest

from mirage.core.testing import run
from mirage.net import TapNetwork
from mirage.net.testing import inside_netns, ip, netns_skip_reason
from mirage.tcpip.dhcp import (
    ACK,
    DISCOVER,
    NAK,
    REQUEST,
    DhcpBound,
    DhcpClient,
    DhcpConfig,
    DhcpMessage,
    DhcpSend,
    DhcpState,
    DhcpUnbound,
)
from mirage.tcpip.stack import DirectStack

MAC = bytes.fromhex("020000000001")
SERVER = bytes((10, 1, 0, 1))
PREVIOUS = bytes((10, 1, 0, 77))
BCAST = b"\xff\xff\xff\xff"


def answer(request: DhcpMessage, kind: int) -> DhcpMessage:
    opts: list[tuple[int, bytes]] = [(53, bytes((kind,))), (54, SERVER)]
    if kind == ACK:
        opts += [(1, bytes((255, 255, 255, 0))), (3, SERVER), (51, (600).to_bytes(4, "big"))]
    yiaddr = request.option(50) if kind == ACK else None
    return DhcpMessage(2, request.xid, request.chaddr, tuple(opts), yiaddr=yiaddr or bytes(4))


def reboot(**kw: float) -> tuple[DhcpClient, DhcpSend]:
    c = DhcpClient(MAC, DhcpConfig(**kw), rng=random.Random(3))  # type: ignore[arg-type]
    (send,) = c.start(10.0, previous=PREVIOUS)
    assert isinstance(send, DhcpSend)
    return c, send


def test_init_reboot_request_then_ack() -> None:
    c, send = reboot()
    msg = send.message
    assert c.state is DhcpState.REBOOTING
    assert msg.message_type == REQUEST and send.dst == BCAST
    assert msg.option(50) == PREVIOUS  # requested address
    assert msg.option(54) is None  # no server identifier
    assert msg.ciaddr == bytes(4)
    (bound,) = c.input(answer(msg, ACK), 10.2)
    assert isinstance(bound, DhcpBound) and not bound.renewed
    assert bound.lease.address == PREVIOUS and bound.lease.acquired == 10.0
    assert c.state is DhcpState.BOUND and c.get_timer() == pytest.approx(310.0)


def test_init_reboot_nak_starts_discovery() -> None:
    c, send = reboot()
    actions = c.input(answer(send.message, NAK), 10.1)
    assert isinstance(actions[0], DhcpUnbound)
    (discover,) = [a for a in actions if isinstance(a, DhcpSend)]
    assert discover.message.message_type == DISCOVER
    assert c.state is DhcpState.SELECTING and c.stats.naks == 1


def test_init_reboot_unanswered_falls_back_to_discovery() -> None:
    c, _ = reboot(request_retries=3)
    kinds = []
    for _ in range(3):
        at = c.get_timer()
        assert at is not None
        (send,) = c.handle_timer(at)
        assert isinstance(send, DhcpSend)
        kinds.append(send.message.message_type)
    assert kinds == [REQUEST, REQUEST, DISCOVER]
    assert c.state is DhcpState.SELECTING


_skip = netns_skip_reason() or (
    None if shutil.which("dnsmasq") else "needs dnsmasq (apt package dnsmasq-base)"
)


@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_init_reboot_against_dnsmasq() -> None:
    from test_dhcp_interop import SERVER as SERVER_IP
    from test_dhcp_interop import TAP, dnsmasq

    async def main(leasefile: Path) -> None:
        net = await TapNetwork.connect(name=TAP, mac="02:00:00:00:44:01")
        ip("addr", "add", f"{SERVER_IP}/24", "dev", TAP)
        config = DhcpConfig(arp_check=False)
        with dnsmasq(leasefile) as server:
            await asyncio.sleep(0.3)
            assert server.poll() is None
            first = await DirectStack.connect(
                network=net, dhcp=True, dhcp_timeout=20, dhcp_config=config
            )
            leased = str(first.interface.ip)
            assert first.dhcp is not None and first.dhcp.stats.discovers >= 1
            await first.disconnect(release=False)  # a restart, keeping the lease
            # The same client again: one REQUEST for the same address, ACKed.
            again = await DirectStack.connect(
                network=net,
                dhcp=True,
                dhcp_timeout=20,
                dhcp_config=config,
                dhcp_previous=leased,
            )
            assert str(again.interface.ip) == leased
            assert again.dhcp is not None and again.dhcp.stats.discovers == 0  # no discovery
            await again.disconnect(release=False)
            # An address that is not ours to have: NAKed (the server is
            # authoritative), then an ordinary lease.
            other = await DirectStack.connect(
                network=net,
                dhcp=True,
                dhcp_timeout=20,
                dhcp_config=config,
                dhcp_previous="10.9.4.200",
            )
            assert other.dhcp is not None and other.dhcp.stats.naks == 1
            assert other.dhcp.stats.discovers >= 1
            assert str(other.interface.ip) == leased
            await other.disconnect()
        await net.disconnect()

    with inside_netns(), tempfile.TemporaryDirectory() as tmp:
        run(main(Path(tmp) / "leases"), 60)
