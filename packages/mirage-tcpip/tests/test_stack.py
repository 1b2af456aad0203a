"""Two direct stacks on one faulty vnet switch: ARP, ping, UDP, TCP, and bad input."""

from __future__ import annotations

import asyncio
import hashlib
import random

from mirage.core.testing import run
from mirage.net import Switch, VnetInterface
from mirage.tcpip.ethernet import EthernetFrame
from mirage.tcpip.stack import DirectStack, TcpFlow
from mirage.tcpip.tcp import TcpConfig

FAST_TIMERS = TcpConfig(rto_initial=0.2, rto_min=0.05, max_retries=30)


async def two_stacks(**faults: float) -> tuple[DirectStack, DirectStack]:
    switch = Switch()
    na = await VnetInterface.connect(switch=switch, seed=1, **faults)  # type: ignore[arg-type]
    nb = await VnetInterface.connect(switch=switch, seed=2, **faults)  # type: ignore[arg-type]
    a = await DirectStack.connect(network=na, ipv4="10.1.0.1/24", tcp_config=FAST_TIMERS)
    b = await DirectStack.connect(network=nb, ipv4="10.1.0.2/24", tcp_config=FAST_TIMERS)
    return a, b


async def read_all(flow: TcpFlow) -> bytes:
    buf = bytearray()
    while data := await flow.read():
        buf += data
    return bytes(buf)


def test_arp_ping_udp() -> None:
    async def main() -> None:
        a, b = await two_stacks()
        assert await a.resolve("10.1.0.2") == b.mac
        assert await b.ping("10.1.0.1") >= 0
        got: asyncio.Queue[tuple[str, int, bytes]] = asyncio.Queue()
        await b.udp.listen(53, lambda s, p, d: got.put_nowait((s, p, d)))
        await a.udp.write("10.1.0.2", 53, b"q" * 4000, src_port=5353)  # fragmented
        assert await asyncio.wait_for(got.get(), 5) == ("10.1.0.1", 5353, b"q" * 4000)
        await a.udp.write("10.1.0.2", 54, b"nobody")
        await asyncio.sleep(0.05)
        assert b.stats.icmp_unreachable_sent == 1
        assert a.stats.icmp_errors_received == 1
        assert a.ip.configured_ips() == ["10.1.0.1"]
        await a.disconnect()
        await b.disconnect()

    run(main())


def test_tcp_over_a_lossy_corrupting_link() -> None:
    payload = random.Random(3).randbytes(300_000)

    async def main() -> None:
        a, b = await two_stacks(loss=0.03, corrupt=0.02, duplicate=0.02, reorder=0.02)

        async def handler(flow: TcpFlow) -> None:
            data = await read_all(flow)
            await flow.write(hashlib.sha256(data).digest())
            await flow.close()

        await b.tcp.listen(80, handler)  # type: ignore[arg-type]
        flow = await a.tcp.connect("10.1.0.2", 80)
        await flow.write(payload)
        await flow.shutdown()
        assert await read_all(flow) == hashlib.sha256(payload).digest()
        await flow.close()
        assert a.stats.rx_bad + b.stats.rx_bad > 0  # corrupted frames were dropped
        await a.disconnect()
        await b.disconnect()

    run(main(), 60)


def test_garbage_frames_are_counted_not_raised() -> None:
    async def main() -> None:
        a, b = await two_stacks()
        rng = random.Random(9)
        for _ in range(300):
            body = rng.randbytes(rng.randrange(0, 200))
            ethertype = rng.choice([0x0800, 0x0806, 0x86DD, 0x1234])
            frame = EthernetFrame(b.mac, a.mac, ethertype, body).encode()
            b._on_frame(frame)
            b._on_frame(rng.randbytes(rng.randrange(0, 60)))
        assert b.stats.rx_bad > 0
        assert await a.ping("10.1.0.2") >= 0  # still answering
        await a.disconnect()
        await b.disconnect()

    run(main())


def test_connect_refused_and_unlisten() -> None:
    async def main() -> None:
        a, b = await two_stacks()
        try:
            await a.tcp.connect("10.1.0.2", 81)
        except ConnectionRefusedError:
            pass
        else:
            raise AssertionError("connected to a closed port")
        assert b.stats.tcp_resets_sent == 1
        await a.disconnect()
        await b.disconnect()

    run(main())


def test_syn_flood_gets_cookies_and_real_clients_still_connect() -> None:
    from mirage.tcpip.ipv4 import Ipv4Packet
    from mirage.tcpip.tcp import SYN, TcpSegment

    async def main() -> None:
        a, b = await two_stacks()
        b.listen_backlog = 4

        async def echo(flow: TcpFlow) -> None:
            while data := await flow.read():
                await flow.write(data)
            await flow.close()

        await b.tcp.listen(80, echo)  # type: ignore[arg-type]
        before = await a.tcp.connect("10.1.0.2", 80)  # established before the flood
        await before.write(b"hi")
        assert await before.read() == b"hi"  # so the server side is established too
        # A flood of SYNs from spoofed sources nobody answers for.
        rng = random.Random(4)
        for i in range(500):
            src = bytes((10, 1, 0, 100 + i % 100))
            syn = TcpSegment(rng.randrange(1024, 65535), 80, rng.getrandbits(32), 0, SYN, 1000)
            ip = Ipv4Packet(src, b.address, 6, syn.encode(src, b.address))
            b._ip_input(ip)
        assert len(b.conns) <= 4 + 2  # bounded: backlog plus the real connection
        assert b.stats.syn_cookies_sent > 400
        # A new client completes its handshake through a cookie.
        flow = await a.tcp.connect("10.1.0.2", 80)
        await flow.write(b"through a cookie")
        await flow.shutdown()
        assert await read_all(flow) == b"through a cookie"
        assert b.stats.syn_cookies_accepted == 1
        assert not flow.conn.ts_enabled  # a cookie SYN-ACK offers no options
        # The connection made before the flood still works.
        await before.write(b"still here")
        await before.shutdown()
        assert await read_all(before) == b"still here"
        await a.disconnect()
        await b.disconnect()

    run(main())
