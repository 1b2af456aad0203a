"""DHCPv6 (RFC 8415): the codec total under hypothesis; the client core's exchanges
in virtual time; and a lease from dnsmasq over TAP in a network namespace."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.core.testing import run
from mirage.net import TapNetwork
from mirage.net.testing import inside_netns, ip, netns_skip_reason
from mirage.tcpip._errors import DecodeError
from mirage.tcpip.dhcp6 import (
    ADVERTISE,
    REBIND,
    RELEASE6,
    RENEW,
    REPLY,
    REQUEST6,
    SOLICIT,
    Dhcp6Bound,
    Dhcp6Client,
    Dhcp6Config,
    Dhcp6Message,
    Dhcp6Send,
    Dhcp6State,
    Dhcp6Unbound,
    IaAddress,
    IaNa,
    duid_ll,
)
from mirage.tcpip.stack import DirectStack

MAC = bytes.fromhex("020000000001")
SERVER_DUID = b"\x00\x03\x00\x01\x02\x00\x00\x00\x00\x09"
ADDRESS = ipaddress.IPv6Address("fd00:9::123").packed
DNS = ipaddress.IPv6Address("fd00:9::53").packed


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_is_total(data: bytes) -> None:
    try:
        message = Dhcp6Message.decode(data)
    except DecodeError as exc:
        assert exc.layer == "dhcp6"
        return
    # The accessors never raise either.
    _ = (message.server_id, message.client_id, message.status, message.ia_na)
    _ = message.dns_servers
    assert Dhcp6Message.decode(message.encode()) == message


def test_ia_na_round_trip() -> None:
    ia = IaNa(7, 100, 160, (IaAddress(ADDRESS, 300, 600),))
    assert IaNa.decode(ia.encode()) == ia


def answer(request: Dhcp6Message, kind: int, *, t1: int = 0, valid: int = 600) -> Dhcp6Message:
    ia = IaNa(1, t1, 0, (IaAddress(ADDRESS, valid // 2, valid),))
    return Dhcp6Message(
        kind,
        request.xid,
        (
            (1, request.client_id or b""),
            (2, SERVER_DUID),
            (3, ia.encode()),
            (23, DNS),
        ),
    )


def sent(actions: list[object]) -> Dhcp6Message:
    (send,) = [a for a in actions if isinstance(a, Dhcp6Send)]
    return send.message


def bound_client(now: float = 0.0) -> tuple[Dhcp6Client, Dhcp6Bound]:
    c = Dhcp6Client(MAC, rng=random.Random(1))
    solicit = sent(c.start(now))
    assert solicit.type == SOLICIT and solicit.client_id == duid_ll(MAC)
    assert solicit.option(6) == b"\x00\x17"  # asks for DNS servers
    assert solicit.ia_na is not None
    request = sent(c.input(answer(solicit, ADVERTISE), now + 0.1))
    assert request.type == REQUEST6 and request.server_id == SERVER_DUID
    assert request.ia_na is not None and request.ia_na.addresses[0].address == ADDRESS
    (bound,) = c.input(answer(request, REPLY), now + 0.2)
    assert isinstance(bound, Dhcp6Bound)
    return c, bound


def test_solicit_advertise_request_reply() -> None:
    c, bound = bound_client()
    lease = bound.lease
    assert lease.address == ADDRESS and lease.dns_servers == (DNS,)
    assert (lease.preferred, lease.valid, lease.t1, lease.t2) == (300, 600, 150, 240)
    assert lease.acquired == 0.1  # the REQUEST's exchange started then
    assert c.state is Dhcp6State.BOUND and c.get_timer() == pytest.approx(150.1)


def test_retransmission_doubles_with_jitter() -> None:
    c = Dhcp6Client(MAC, Dhcp6Config(solicit_max=8.0), rng=random.Random(2))
    c.start(0.0)
    now, waits = 0.0, []
    for _ in range(6):
        at = c.get_timer()
        assert at is not None
        waits.append(at - now)
        now = at
        message = sent(c.handle_timer(now))
        assert message.type == SOLICIT
    assert 0.9 <= waits[0] <= 1.1
    assert 1.7 <= waits[1] <= 2.5
    assert all(w <= 8.0 * 1.1 + 1e-9 for w in waits)
    assert waits[-1] >= 8.0 * 0.9 - 1e-9


def test_replies_not_ours_are_ignored() -> None:
    c = Dhcp6Client(MAC, rng=random.Random(3))
    solicit = sent(c.start(0.0))
    other = Dhcp6Message(ADVERTISE, solicit.xid ^ 1, answer(solicit, ADVERTISE).options)
    assert c.input(other, 0.1) == []
    no_address = Dhcp6Message(
        ADVERTISE,
        solicit.xid,
        (
            (1, duid_ll(MAC)),
            (2, SERVER_DUID),
            (3, IaNa(1, 0, 0).encode() + b"\x00\x0d\x00\x02\x00\x02"),
        ),
    )
    assert c.input(no_address, 0.1) == []
    assert c.state is Dhcp6State.SOLICITING and c.ignored == 2


def test_renew_rebind_expire() -> None:
    c, _ = bound_client()
    at = c.get_timer()
    assert at is not None
    renew = sent(c.handle_timer(at))
    assert renew.type == RENEW and renew.server_id == SERVER_DUID
    assert c.state is Dhcp6State.RENEWING
    kinds = []
    while (at := c.get_timer()) is not None and c.state is not Dhcp6State.SOLICITING:
        actions = c.handle_timer(at)
        kinds += [a.message.type for a in actions if isinstance(a, Dhcp6Send)]
        if any(isinstance(a, Dhcp6Unbound) for a in actions):
            assert at == pytest.approx(600.1)  # the valid lifetime ended
            break
    assert REBIND in kinds and kinds[-1] == SOLICIT
    assert c.lease is None


def test_renew_answered() -> None:
    c, _ = bound_client()
    at = c.get_timer()
    assert at is not None
    renew = sent(c.handle_timer(at))
    (bound,) = c.input(answer(renew, REPLY), at + 0.1)
    assert isinstance(bound, Dhcp6Bound) and bound.renewed
    assert c.state is Dhcp6State.BOUND


def test_reply_without_the_address_unbinds() -> None:
    c, _ = bound_client()
    at = c.get_timer()
    assert at is not None
    renew = sent(c.handle_timer(at))
    ia = IaNa(1, 0, 0).encode() + b"\x00\x0d\x00\x02\x00\x03"  # NoBinding
    reply = Dhcp6Message(REPLY, renew.xid, ((1, duid_ll(MAC)), (2, SERVER_DUID), (3, ia)))
    actions = c.input(reply, at + 0.1)
    assert isinstance(actions[0], Dhcp6Unbound) and actions[0].address == ADDRESS
    assert sent(actions).type == SOLICIT


def test_release() -> None:
    c, _ = bound_client()
    release, unbound = c.release(1.0)
    assert isinstance(release, Dhcp6Send) and release.message.type == RELEASE6
    assert isinstance(unbound, Dhcp6Unbound)
    assert c.get_timer() is None and c.state is Dhcp6State.STOPPED


_skip = (
    netns_skip_reason()
    or (None if shutil.which("dnsmasq") else "needs dnsmasq (apt package dnsmasq-base)")
    or (None if shutil.which("ping") else "needs ping (apt package iputils-ping)")
)
TAP = "mdhcp6"


@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_lease_from_dnsmasq() -> None:
    async def main() -> None:
        with open("/proc/sys/net/ipv6/conf/default/accept_dad", "w") as f:
            f.write("0")
        net = await TapNetwork.connect(name=TAP)
        ip("-6", "addr", "add", "fd00:9::1/64", "dev", TAP, "nodad")
        server = subprocess.Popen(
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                f"--interface={TAP}",
                "--bind-interfaces",
                "--user=root",
                "--pid-file",
                "--leasefile-ro",
                "--dhcp-range=fd00:9::100,fd00:9::1ff,64,10m",
                "--dhcp-option=option6:dns-server,[fd00:9::53]",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await asyncio.sleep(0.3)
            stack = await DirectStack.connect(
                network=net, ipv4="10.9.12.2/24", ipv6=True, dhcp6=True, dhcp_timeout=20
            )
            try:
                lease = stack.lease6
                assert lease is not None
                leased = ipaddress.IPv6Address(lease.address)
                assert ipaddress.IPv6Address("fd00:9::100") <= leased
                assert leased <= ipaddress.IPv6Address("fd00:9::1ff")
                assert lease.dns_servers == (DNS,)
                assert lease.valid == 600
                # The kernel reaches us at the leased address.
                proc = await asyncio.create_subprocess_exec(
                    "ping",
                    "-6",
                    "-c",
                    "2",
                    "-i",
                    "0.2",
                    "-W",
                    "2",
                    str(leased),
                    stdout=asyncio.subprocess.PIPE,
                )
                out, _ = await proc.communicate()
                assert proc.returncode == 0, out
            finally:
                await stack.disconnect()
        finally:
            server.terminate()
            server.wait(5)
            await net.disconnect()

    with inside_netns():
        run(main(), 60)
