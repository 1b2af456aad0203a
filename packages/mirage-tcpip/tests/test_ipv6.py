"""IPv6: codecs total under hypothesis; the NDP core (DAD, neighbour solicitation and
advertisement, router advertisements and SLAAC) in virtual time; two stacks on a vnet
switch talking ICMPv6, UDP and TCP over IPv6."""

from __future__ import annotations

import asyncio
import ipaddress
import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirage.core.testing import run
from mirage.net import Switch, VnetInterface
from mirage.tcpip._errors import DecodeError
from mirage.tcpip.ethernet import EthernetFrame
from mirage.tcpip.icmpv6 import (
    NA_OVERRIDE,
    NA_SOLICITED,
    TYPE_NEIGHBOR_ADVERTISEMENT,
    TYPE_NEIGHBOR_SOLICITATION,
    TYPE_ROUTER_ADVERTISEMENT,
    TYPE_ROUTER_SOLICITATION,
    Icmpv6Message,
    NdpMessage,
    PrefixInfo,
)
from mirage.tcpip.ipv4 import Ipv4Packet, Reassembler
from mirage.tcpip.ipv6 import (
    ALL_NODES,
    ALL_ROUTERS,
    PROTO_FRAGMENT,
    UNSPECIFIED,
    Ipv6Fragment,
    Ipv6Packet,
    eui64_interface_id,
    fragment6,
    link_local,
    multicast_mac,
    solicited_node,
)
from mirage.tcpip.ndp import (
    NdpAddressReady,
    NdpConflict,
    NdpCore,
    NdpFailed,
    NdpResolved,
    NdpSend,
)
from mirage.tcpip.stack import DirectStack, TcpFlow
from mirage.tcpip.tcp import TcpSegment
from mirage.tcpip.udp import UdpDatagram

FAST = settings(max_examples=150, deadline=None)
A6 = ipaddress.IPv6Address("fe80::1").packed
B6 = ipaddress.IPv6Address("fe80::2").packed
MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")


# -- codecs ------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=200))
@example(b"\x60" + bytes(39))
@example(b"\x60\x00\x00\x00\x00\x08\x00\x40" + bytes(32) + b"\x3a\x05" + bytes(6))
def test_ipv6_decode_is_total(data: bytes) -> None:
    try:
        Ipv6Packet.decode(data)
    except DecodeError as exc:
        assert exc.layer == "ipv6"


@FAST
@given(st.binary(max_size=200), st.integers(0, 255), st.integers(0, 255))
def test_ipv6_round_trip(payload: bytes, nh: int, hop: int) -> None:
    if nh in (0, 43, 60):
        nh = 6
    packet = Ipv6Packet(A6, B6, nh, payload, hop, 3, 0x12345)
    assert Ipv6Packet.decode(packet.encode()) == packet


def test_extension_headers_are_skipped() -> None:
    inner = UdpDatagram(1, 2, b"x").encode(A6, B6)
    hop_by_hop = bytes((17, 0)) + bytes(6)
    packet = Ipv6Packet(A6, B6, 0, hop_by_hop + inner)
    decoded = Ipv6Packet.decode(packet.encode())
    assert decoded.next_header == 17 and decoded.payload == inner


@FAST
@given(st.binary(max_size=60))
def test_fragment_header_decode_is_total(data: bytes) -> None:
    try:
        frag = Ipv6Fragment.decode(data)
    except DecodeError as exc:
        assert exc.layer == "ipv6"
    else:
        assert Ipv6Fragment.decode(frag.encode()) == frag


def reassemble(pieces: list[bytes]) -> bytes | None:
    """Feed encoded fragments through the reassembler the way the stack does."""
    r = Reassembler()
    for data in pieces:
        packet = Ipv6Packet.decode(data)
        assert packet.next_header == PROTO_FRAGMENT and len(data) <= 1280
        f = Ipv6Fragment.decode(packet.payload)
        piece = Ipv4Packet(
            packet.src,
            packet.dst,
            f.next_header,
            f.data,
            ident=f.ident,
            more_fragments=f.more,
            offset=f.offset,
        )
        whole = r.push(piece, 0.0)
        if whole is not None:
            return whole.payload
    return None


@FAST
@given(st.binary(min_size=1300, max_size=5000), st.randoms())
def test_fragment6_and_reassembly_in_any_order(payload: bytes, rnd: object) -> None:
    pieces = fragment6(Ipv6Packet(A6, B6, 17, payload), 1280, 77)
    assert len(pieces) > 1
    rnd.shuffle(pieces)  # type: ignore[attr-defined]
    assert reassemble(pieces) == payload


@FAST
@given(st.binary(max_size=200))
@example(bytes((135, 0, 0, 0)) + bytes(4) + bytes(16) + b"\x01\x00")
def test_icmpv6_and_ndp_decode_are_total(data: bytes) -> None:
    # Checksums are fixed up so that the NDP parser sees arbitrary bodies too.
    for body in (data, Icmpv6Message(data[0] if data else 135, 0, 0, data[1:]).encode(A6, B6)):
        try:
            message = Icmpv6Message.decode(body, A6, B6)
        except DecodeError as exc:
            assert exc.layer == "icmpv6"
            continue
        try:
            NdpMessage.parse(message)
        except DecodeError as exc:
            assert exc.layer == "ndp"


def test_icmpv6_checksum_is_verified() -> None:
    data = bytearray(Icmpv6Message(128, 0, 0x10001, b"ping").encode(A6, B6))
    assert Icmpv6Message.decode(bytes(data), A6, B6).body == b"ping"
    data[-1] ^= 1
    try:
        Icmpv6Message.decode(bytes(data), A6, B6)
    except DecodeError as exc:
        assert exc.reason == "bad checksum"
    else:
        raise AssertionError("a bad checksum was accepted")


def test_ndp_round_trip() -> None:
    prefix = PrefixInfo(bytes.fromhex("fd000009" + "00" * 12), 64, True, True, 600, 300)
    for message in (
        NdpMessage(TYPE_ROUTER_SOLICITATION, source_ll=MAC),
        NdpMessage(
            TYPE_ROUTER_ADVERTISEMENT, flags=1800, source_ll=MAC, prefixes=(prefix,), mtu=1500
        ),
        NdpMessage(TYPE_NEIGHBOR_SOLICITATION, B6, source_ll=MAC),
        NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, B6, NA_SOLICITED, target_ll=MAC),
    ):
        icmp = Icmpv6Message.decode(message.to_icmp().encode(A6, B6), A6, B6)
        assert NdpMessage.parse(icmp) == message


def test_tcp_and_udp_checksums_over_ipv6() -> None:
    seg = TcpSegment(1, 2, 3, 4, 0x10, 5, b"data")
    assert TcpSegment.decode(seg.encode(A6, B6), A6, B6) == seg
    data = bytearray(UdpDatagram(1, 2, b"x").encode(A6, B6))
    assert UdpDatagram.decode(bytes(data), A6, B6).payload == b"x"
    data[6:8] = b"\0\0"  # no checksum: allowed over IPv4, not over IPv6
    try:
        UdpDatagram.decode(bytes(data), A6, B6)
    except DecodeError:
        pass
    else:
        raise AssertionError("a zero UDP checksum was accepted over IPv6")


def test_addresses() -> None:
    mac = bytes.fromhex("525400123456")
    assert eui64_interface_id(mac) == bytes.fromhex("505400fffe123456")
    assert ipaddress.IPv6Address(link_local(mac)) == ipaddress.IPv6Address(
        "fe80::5054:ff:fe12:3456"
    )
    assert ipaddress.IPv6Address(solicited_node(link_local(mac))) == ipaddress.IPv6Address(
        "ff02::1:ff12:3456"
    )
    assert multicast_mac(ALL_NODES) == bytes.fromhex("333300000001")


# -- the NDP core --------------------------------------------------------------------------


def ndp_in(core: NdpCore, src: bytes, dst: bytes, message: NdpMessage, now: float) -> list[object]:
    return list(core.input(src, dst, 255, message.to_icmp(), now))


def ready(core: NdpCore, address: bytes) -> None:
    (probe,) = core.add_address(address, 64, 0.0)
    assert isinstance(probe, NdpSend)
    assert probe.src == UNSPECIFIED and probe.dst == solicited_node(address)
    assert NdpMessage.parse(probe.message).source_ll is None
    assert core.get_timer() == 1.0
    (done,) = core.handle_timer(1.0)
    assert done == NdpAddressReady(address, 64)


def test_dad_then_answering_solicitations() -> None:
    core = NdpCore(MAC)
    ll = link_local(MAC)
    ready(core, ll)
    ns = NdpMessage(TYPE_NEIGHBOR_SOLICITATION, ll, source_ll=PEER_MAC)
    actions = ndp_in(core, B6, solicited_node(ll), ns, 2.0)
    (na,) = [a for a in actions if isinstance(a, NdpSend)]
    assert na.dst == B6 and na.dst_mac == PEER_MAC and na.src == ll
    parsed = NdpMessage.parse(na.message)
    assert parsed.type == TYPE_NEIGHBOR_ADVERTISEMENT and parsed.target == ll
    assert parsed.flags == NA_SOLICITED | NA_OVERRIDE and parsed.target_ll == MAC
    assert core.lookup(B6, 2.0) == PEER_MAC  # learnt from the solicitation
    # Not from the link (hop limit below 255): ignored.
    assert core.input(B6, ll, 64, ns.to_icmp(), 2.0) == []


def test_dad_conflicts() -> None:
    core = NdpCore(MAC)
    ll = link_local(MAC)
    core.add_address(ll, 64, 0.0)
    na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, ll, NA_OVERRIDE, target_ll=PEER_MAC)
    assert ndp_in(core, B6, ALL_NODES, na, 0.5) == [NdpConflict(ll, PEER_MAC)]
    assert ll not in core.addresses and core.get_timer() is None
    # Someone probing for the same tentative address.
    core.add_address(ll, 64, 2.0)
    probe = NdpMessage(TYPE_NEIGHBOR_SOLICITATION, ll)
    assert ndp_in(core, UNSPECIFIED, solicited_node(ll), probe, 2.5) == [NdpConflict(ll, None)]
    assert core.stats.conflicts == 2


def test_resolution_retries_and_fails() -> None:
    core = NdpCore(MAC)
    ready(core, link_local(MAC))
    mac, actions = core.query(B6, 5.0)
    assert mac is None
    (ns,) = actions
    assert isinstance(ns, NdpSend) and ns.dst == solicited_node(B6)
    assert core.query(B6, 5.1) == (None, [])
    na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, B6, NA_SOLICITED, target_ll=PEER_MAC)
    assert ndp_in(core, B6, link_local(MAC), na, 5.2) == [NdpResolved(B6, PEER_MAC)]
    assert core.query(B6, 5.3) == (PEER_MAC, [])
    other = ipaddress.IPv6Address("fe80::3").packed
    core.query(other, 6.0)
    sent = 0
    failed = []
    while (at := core.get_timer()) is not None:
        for action in core.handle_timer(at):
            sent += isinstance(action, NdpSend)
            failed += [action] if isinstance(action, NdpFailed) else []
    assert sent == 2 and failed == [NdpFailed(other)]


def test_router_advertisement_gives_slaac_router_and_mtu() -> None:
    core = NdpCore(MAC)
    ll = link_local(MAC)
    ready(core, ll)
    (rs,) = core.solicit_routers(1.0)
    assert isinstance(rs, NdpSend) and rs.dst == ALL_ROUTERS and rs.src == ll
    assert NdpMessage.parse(rs.message).source_ll == MAC
    prefix = bytes.fromhex("fd000009" + "00" * 12)
    ra = NdpMessage(
        TYPE_ROUTER_ADVERTISEMENT,
        flags=1800,
        source_ll=PEER_MAC,
        prefixes=(
            PrefixInfo(prefix, 64, True, True, 600, 300),
            PrefixInfo(prefix[:4] + b"\1" + bytes(11), 64, True, True, 100, 200),  # bad
        ),
        mtu=1400,
    )
    actions = ndp_in(core, B6, ALL_NODES, ra, 1.5)
    ours = prefix[:8] + eui64_interface_id(MAC)
    (probe,) = [a for a in actions if isinstance(a, NdpSend)]
    assert probe.dst == solicited_node(ours)
    assert core.default_router(2.0) == B6 and core.lookup(B6, 2.0) == PEER_MAC
    assert core.mtu == 1400
    assert core.on_link(prefix[:8] + bytes(7) + b"\x09", 2.0)
    assert not core.on_link(bytes.fromhex("20010db8" + "00" * 12), 2.0)
    assert core.handle_timer(2.5) == [NdpAddressReady(ours, 64)]
    assert core.source_for(bytes.fromhex("fd000009" + "00" * 11 + "01")) == ours
    assert core.source_for(B6) == ll
    # RAs from a global source are not believed (RFC 4861 6.1.2).
    assert ndp_in(core, ours, ALL_NODES, ra, 3.0) == []
    # A zero router lifetime withdraws the router.
    ndp_in(core, B6, ALL_NODES, NdpMessage(TYPE_ROUTER_ADVERTISEMENT, flags=0), 4.0)
    assert core.default_router(4.0) is None


# -- two stacks --------------------------------------------------------------------------


def test_two_stacks_over_ipv6() -> None:
    async def main() -> None:
        switch = Switch()
        na = await VnetInterface.connect(switch=switch, seed=1)
        nb = await VnetInterface.connect(switch=switch, seed=2)
        ndp_a, ndp_b = NdpCore(na.mac, retrans_timer=0.05), NdpCore(nb.mac, retrans_timer=0.05)
        a = await DirectStack.connect(network=na, ipv4="10.1.0.1/24", ipv6=True, ndp=ndp_a)
        b = await DirectStack.connect(network=nb, ipv4="10.1.0.2/24", ipv6=True, ndp=ndp_b)
        b_ll = str(ipaddress.IPv6Address(link_local(nb.mac)))
        assert b_ll in b.ip.configured_ips()
        assert await a.ping(b_ll) >= 0
        got: asyncio.Queue[tuple[str, int, bytes]] = asyncio.Queue()
        await b.udp.listen(53, lambda s, p, d: got.put_nowait((s, p, d)))
        await a.udp.write(b_ll, 53, b"over six", src_port=5353)
        a_ll = str(ipaddress.IPv6Address(link_local(na.mac)))
        assert await asyncio.wait_for(got.get(), 5) == (a_ll, 5353, b"over six")
        payload = bytes(range(256)) * 1000

        async def echo(flow: TcpFlow) -> None:
            while data := await flow.read():
                await flow.write(data)
            await flow.close()

        await b.tcp.listen(7, echo)
        flow = await a.tcp.connect(b_ll, 7)
        assert flow.conn.send_mss <= na.mtu - 60
        # ICMPv6 packet too big, quoting a sequence number of ours, lowers the MSS.
        local, sport, remote, dport = flow.quad
        quoted_tcp = sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
        quoted_tcp += (flow.conn.snd_una & 0xFFFFFFFF).to_bytes(4, "big") + bytes(12)
        quoted = Ipv6Packet(local, remote, 6, quoted_tcp + bytes(1300)).encode()
        too_big = Icmpv6Message(2, 0, 1280, quoted).encode(remote, local)
        frame = EthernetFrame(
            na.mac, nb.mac, 0x86DD, Ipv6Packet(remote, local, 58, too_big).encode()
        )
        a._on_frame(frame.encode())
        assert a.stats.pmtu_updates == 1
        assert flow.conn.send_mss <= 1280 - 60
        await flow.write(payload)
        await flow.shutdown()
        echoed = bytearray()
        while data := await asyncio.wait_for(flow.read(), 5):
            echoed += data
        assert bytes(echoed) == payload
        # Datagrams larger than the link go in fragments and are reassembled.
        await a.udp.write(b_ll, 53, payload[:6000], src_port=5353)
        assert await asyncio.wait_for(got.get(), 5) == (a_ll, 5353, payload[:6000])
        assert b.reassembler6.stats.completed == 1
        # A closed UDP port answers with an ICMPv6 port unreachable.
        await a.udp.write(b_ll, 54, b"nobody")
        await asyncio.sleep(0.05)
        assert b.stats.icmp_unreachable_sent == 1
        assert a.stats.icmp_errors_received == 2  # with the packet too big above
        await a.disconnect()
        await b.disconnect()

    run(main())


def test_garbage_ipv6_is_counted_not_raised() -> None:
    """Random IPv6 packets, well-formed up to a random layer, never raise out of the
    stack, and it still answers afterwards."""

    async def main() -> None:
        switch = Switch()
        na = await VnetInterface.connect(switch=switch, seed=1)
        nb = await VnetInterface.connect(switch=switch, seed=2)
        a = await DirectStack.connect(
            network=na, ipv4="10.1.0.1/24", ipv6=True, ndp=NdpCore(na.mac, retrans_timer=0.05)
        )
        b = await DirectStack.connect(
            network=nb, ipv4="10.1.0.2/24", ipv6=True, ndp=NdpCore(nb.mac, retrans_timer=0.05)
        )
        rng = random.Random(11)
        a_ll, b_ll = link_local(na.mac), link_local(nb.mac)
        dsts = [b_ll, ALL_NODES, solicited_node(b_ll), bytes(16)]
        srcs = [a_ll, UNSPECIFIED, bytes.fromhex("fd00" + "00" * 13 + "07")]
        for i in range(1500):
            src, dst = rng.choice(srcs), rng.choice(dsts)
            body = rng.randbytes(rng.randrange(0, 120))
            nh = rng.choice([6, 17, 58, 58, 58, 44, 0, 60, 99])
            if nh == 58:
                kind = rng.choice([1, 2, 128, 129, 133, 134, 135, 136])
                if kind in (135, 136) and rng.random() < 0.5:
                    body = rng.choice([b_ll, a_ll]) + bytes((rng.choice([1, 2, 3, 5]), 1)) + body
                body = Icmpv6Message(kind, rng.choice([0, 0, 1]), rng.getrandbits(32), body).encode(
                    src, dst
                )
            elif nh == 17 and len(body) >= 8:
                body = UdpDatagram(rng.randrange(65536), rng.randrange(65536), body).encode(
                    src, dst
                )
            elif nh == 6:
                body = TcpSegment(
                    rng.randrange(65536),
                    7,
                    rng.getrandbits(32),
                    rng.getrandbits(32),
                    rng.randrange(256),
                    1000,
                    body,
                ).encode(src, dst)
            elif nh == 44:
                body = Ipv6Fragment(
                    17, rng.randrange(0, 4000) & ~7, rng.random() < 0.5, i % 5, body
                ).encode()
            hop = rng.choice([255, 64])
            packet = Ipv6Packet(src, dst, nh, body, hop).encode()
            if rng.random() < 0.2:
                packet = packet[: rng.randrange(len(packet) + 1)]
            b._on_frame(
                EthernetFrame(
                    multicast_mac(dst) if dst[0] == 0xFF else nb.mac, na.mac, 0x86DD, packet
                ).encode()
            )
        assert b.stats.rx_bad > 0
        assert await a.ping(str(ipaddress.IPv6Address(b_ll))) >= 0
        await a.disconnect()
        await b.disconnect()

    run(main())
