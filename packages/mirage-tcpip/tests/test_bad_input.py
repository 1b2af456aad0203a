"""Bad input at every layer is dropped and counted by the layer that rejected it,
never raised; a flood of SYNs from many spoofed sources leaves memory bounded."""

from __future__ import annotations

import asyncio
import ipaddress
import random

from mirage.core.testing import run
from mirage.net import Switch, VnetInterface
from mirage.tcpip.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, EthernetFrame
from mirage.tcpip.icmp import PROTO_ICMP, IcmpMessage
from mirage.tcpip.icmpv6 import TYPE_ECHO_REQUEST, Icmpv6Message
from mirage.tcpip.ipv4 import Ipv4Packet
from mirage.tcpip.ipv6 import PROTO_ICMPV6, Ipv6Packet
from mirage.tcpip.stack import DirectStack, TcpFlow
from mirage.tcpip.tcp import PROTO_TCP, SYN, TcpSegment
from mirage.tcpip.udp import PROTO_UDP, UdpDatagram

A = bytes((10, 2, 0, 1))
B = bytes((10, 2, 0, 2))


def flip(data: bytes, at: int) -> bytes:
    """``data`` with one bit of byte ``at`` flipped (a checksum no longer matches)."""
    return data[:at] + bytes((data[at] ^ 0x10,)) + data[at + 1 :]


async def pair(ipv6: bool = False) -> tuple[DirectStack, DirectStack]:
    switch = Switch()
    na = await VnetInterface.connect(switch=switch, seed=1)
    nb = await VnetInterface.connect(switch=switch, seed=2)
    a = await DirectStack.connect(network=na, ipv4="10.2.0.1/24", ipv6=ipv6)
    b = await DirectStack.connect(network=nb, ipv4="10.2.0.2/24", ipv6=ipv6)
    return a, b


def test_every_layer_counts_what_it_drops() -> None:
    async def main() -> None:
        a, b = await pair(ipv6=True)
        assert b.ndp is not None and a.ndp is not None
        a6, b6 = next(iter(a.ndp.addresses)), next(iter(b.ndp.addresses))

        def v4(proto: int, payload: bytes) -> bytes:
            packet = Ipv4Packet(A, B, proto, payload).encode()
            return EthernetFrame(b.mac, a.mac, ETHERTYPE_IPV4, packet).encode()

        def v6(proto: int, payload: bytes) -> bytes:
            packet = Ipv6Packet(a6, b6, proto, payload).encode()
            return EthernetFrame(b.mac, a.mac, ETHERTYPE_IPV6, packet).encode()

        udp = UdpDatagram(1000, 2000, b"payload").encode(A, B)
        tcp = TcpSegment(1000, 80, 1, 0, SYN, 1000).encode(A, B)
        echo = IcmpMessage.echo_request(1, 1, b"ping").encode()
        echo6 = Icmpv6Message(TYPE_ECHO_REQUEST, 0, 1 << 16 | 1, b"ping").encode(a6, b6)
        good_ip = v4(PROTO_UDP, udp)
        cases = {
            "ethernet": [b"\x00" * 10, b.mac + a.mac + b"\x00\x40" + bytes(64)],
            "arp": [EthernetFrame(b.mac, a.mac, ETHERTYPE_ARP, bytes(10)).encode()],
            "ipv4": [flip(good_ip, 14 + 8), good_ip[: 14 + 12]],  # checksum; truncated
            "icmp": [v4(PROTO_ICMP, flip(echo, 6)), v4(PROTO_ICMP, echo[:3])],
            "udp": [v4(PROTO_UDP, flip(udp, 9)), v4(PROTO_UDP, udp[:5])],
            "tcp": [v4(PROTO_TCP, flip(tcp, 4)), v4(PROTO_TCP, tcp[:12])],
            "ipv6": [EthernetFrame(b.mac, a.mac, ETHERTYPE_IPV6, bytes(20)).encode()],
            "icmpv6": [v6(PROTO_ICMPV6, flip(echo6, 5))],
        }
        for layer, frames in cases.items():
            before = b.stats.bad_by_layer.get(layer, 0)
            for frame in frames:
                b._on_frame(frame)
            assert b.stats.bad_by_layer.get(layer, 0) - before == len(frames), layer
        assert b.stats.rx_bad == sum(len(f) for f in cases.values())
        assert b.stats.rx_errors == 0
        assert sum(b.stats.bad_by_layer.values()) == b.stats.rx_bad
        # Still working: a ping both ways.
        assert await a.ping("10.2.0.2") >= 0
        assert await b.ping(str(ipaddress.IPv6Address(a6))) >= 0
        await a.disconnect()
        await b.disconnect()

    run(main())


def test_a_failing_udp_callback_does_not_escape() -> None:
    async def main() -> None:
        a, b = await pair()

        def boom(src: str, port: int, data: bytes) -> None:
            raise RuntimeError("application bug")

        await b.udp.listen(53, boom)
        await a.udp.write("10.2.0.2", 53, b"x")
        await asyncio.sleep(0.05)
        assert b.stats.rx_errors == 1
        assert await a.ping("10.2.0.2") >= 0
        await a.disconnect()
        await b.disconnect()

    run(main())


def test_syn_flood_from_spoofed_sources_is_bounded() -> None:
    """10,000 SYNs from 10,000 sources (on and off the link) that never answer:
    the backlog, ARP's pending table and the queue of packets awaiting ARP stay
    bounded, and a connection made before the flood still works."""

    async def main() -> None:
        switch = Switch()
        na = await VnetInterface.connect(switch=switch, seed=1)
        nb = await VnetInterface.connect(switch=switch, seed=2)
        a = await DirectStack.connect(network=na, ipv4="10.2.0.1/16")
        b = await DirectStack.connect(network=nb, ipv4="10.2.0.2/16", ipv4_gateway="10.2.0.1")

        async def echo(flow: TcpFlow) -> None:
            while data := await flow.read():
                await flow.write(data)
            await flow.close()

        await b.tcp.listen(80, echo)  # type: ignore[arg-type]
        before = await a.tcp.connect("10.2.0.2", 80)
        await before.write(b"hi")
        assert await before.read() == b"hi"
        rng = random.Random(5)
        for i in range(10_000):
            # Half on the /16 link (each needs ARP), half beyond it (via the gateway).
            src = bytes((10, 2, i >> 8 & 0xFF, i & 0xFF)) if i % 2 else rng.randbytes(4)
            syn = TcpSegment(rng.randrange(1024, 65535), 80, rng.getrandbits(32), 0, SYN, 1000)
            packet = Ipv4Packet(src, B, PROTO_TCP, syn.encode(src, B)).encode()
            b._on_frame(EthernetFrame(b.mac, a.mac, ETHERTYPE_IPV4, packet).encode())
            if i % 500 == 0:
                await asyncio.sleep(0)  # let the switch and the other stack run
        assert len(b._syn_received) <= b.listen_backlog
        assert len(b.conns) <= b.listen_backlog + 1
        assert len(b.arp._pending) <= b.arp.max_pending
        assert len(b._arp_queue) <= b.arp.max_pending
        assert sum(len(q) for q in b._arp_queue.values()) <= b.arp.max_pending * 64
        assert b.stats.syn_cookies_sent > 9000
        assert b.stats.arp_queue_dropped > 0
        await before.write(b"still here")
        await before.shutdown()
        got = bytearray()
        while data := await before.read():
            got += data
        assert got == b"still here"
        await a.disconnect()
        await b.disconnect()

    run(main(), 120)
