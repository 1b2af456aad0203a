"""Interop with the Linux kernel's own TCP/IP, over a TAP device in a throw-away
network namespace: ARP both ways, ping both ways, TCP connect in both directions
with a transfer checked by SHA-256, UDP both ways, and an ICMP port unreachable."""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
import socket
from collections.abc import Awaitable, Callable

import pytest

from mirage.core.testing import run
from mirage.net import TapNetwork, format_mac
from mirage.net.testing import inside_netns, ip, netns_skip_reason
from mirage.tcpip.stack import DirectStack, TcpFlow

_skip = netns_skip_reason()
pytestmark = pytest.mark.skipif(_skip is not None, reason=_skip or "")

KERNEL = "10.9.0.1"
OURS = "10.9.0.2"
SIZE = 4 << 20


def in_netns(
    body: Callable[[DirectStack], Awaitable[None]], timeout: float = 30.0, *, offload: bool = False
) -> None:
    async def main() -> None:
        net = await TapNetwork.connect(name="mtap0", offload=offload)
        ip("addr", "add", f"{KERNEL}/24", "dev", "mtap0")
        stack = await DirectStack.connect(network=net, ipv4=f"{OURS}/24")
        try:
            await body(stack)
        finally:
            await stack.disconnect()
            await net.disconnect()

    with inside_netns():
        run(main(), timeout)


def test_arp_both_ways() -> None:
    async def body(stack: DirectStack) -> None:
        kernel_mac = ip("link", "show", "mtap0").split("link/ether ")[1].split()[0]
        assert format_mac(await stack.resolve(KERNEL)) == kernel_mac
        # The kernel asks for us when it first sends to us.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(b"x", (OURS, 9))
        sock.close()
        for _ in range(100):
            neigh = ip("neigh", "show", OURS, "dev", "mtap0")
            if format_mac(stack.mac) in neigh:
                break
            await asyncio.sleep(0.02)
        assert format_mac(stack.mac) in neigh

    in_netns(body)


@pytest.mark.skipif(shutil.which("ping") is None, reason="needs ping (apt package iputils-ping)")
def test_ping_both_ways() -> None:
    async def body(stack: DirectStack) -> None:
        proc = await asyncio.create_subprocess_exec(
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            OURS,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out
        assert b"3 received" in out
        assert stack.stats.icmp_echo_replies == 3
        rtt = await stack.ping(KERNEL)
        assert rtt >= 0

    in_netns(body)


async def kernel_read_all(reader: asyncio.StreamReader) -> bytes:
    return await reader.read()


async def read_all(flow: TcpFlow) -> bytes:
    buf = bytearray()
    while data := await flow.read():
        buf += data
    return bytes(buf)


def test_tcp_we_connect_to_kernel() -> None:
    payload = random.Random(1).randbytes(SIZE)

    async def body(stack: DirectStack) -> None:
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read()
            got.set_result(data)
            writer.write(hashlib.sha256(data).digest() + payload[::-1])
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, KERNEL, 5001)
        try:
            flow = await stack.tcp.connect(KERNEL, 5001)
            await flow.write(payload)
            await flow.shutdown()
            reply = await read_all(flow)
            await flow.close()
            assert hashlib.sha256(await got).digest() == hashlib.sha256(payload).digest()
            assert reply[:32] == hashlib.sha256(payload).digest()
            assert hashlib.sha256(reply[32:]).digest() == hashlib.sha256(payload[::-1]).digest()
        finally:
            server.close()

    in_netns(body)


def test_tcp_kernel_connects_to_us() -> None:
    payload = random.Random(2).randbytes(SIZE)

    async def body(stack: DirectStack) -> None:
        async def handler(flow: TcpFlow) -> None:  # type: ignore[override]
            data = await read_all(flow)
            await flow.write(hashlib.sha256(data).digest() + data[: 1 << 20])
            await flow.close()

        await stack.tcp.listen(6001, handler)  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection(OURS, 6001)
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        reply = await reader.read()
        writer.close()
        assert reply[:32] == hashlib.sha256(payload).digest()
        assert reply[32:] == payload[: 1 << 20]

    in_netns(body)


def test_tcp_refused_both_ways() -> None:
    async def body(stack: DirectStack) -> None:
        with pytest.raises(ConnectionRefusedError):
            await stack.tcp.connect(KERNEL, 5999)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(OURS, 5999)

    in_netns(body)


def test_udp_both_ways_and_port_unreachable() -> None:
    async def body(stack: DirectStack) -> None:
        loop = asyncio.get_running_loop()
        got: asyncio.Queue[tuple[str, int, bytes]] = asyncio.Queue()
        await stack.udp.listen(7001, lambda src, port, data: got.put_nowait((src, port, data)))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((KERNEL, 7002))
        sock.setblocking(False)
        try:
            sock.sendto(b"to mirage", (OURS, 7001))
            assert await asyncio.wait_for(got.get(), 5) == (KERNEL, 7002, b"to mirage")
            big = bytes(range(256)) * 20  # 5 KiB: fragmented both ways
            sock.sendto(big, (OURS, 7001))
            assert (await asyncio.wait_for(got.get(), 5))[2] == big
            await stack.udp.write(KERNEL, 7002, b"to kernel", src_port=7001)
            data, addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), 5)
            assert (data, addr) == (b"to kernel", (OURS, 7001))
            await stack.udp.write(KERNEL, 7002, big, src_port=7001)
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), 5)
            assert data == big
            # A closed port of ours answers with ICMP port unreachable, which the
            # kernel reports on a connected socket as ECONNREFUSED.
            sock.connect((OURS, 7999))
            sock.send(b"anyone?")
            await asyncio.sleep(0.2)
            with pytest.raises(ConnectionRefusedError):
                sock.recv(100)
            assert stack.stats.icmp_unreachable_sent == 1
        finally:
            sock.close()

    in_netns(body)


BIG = 100 << 20  # 100 MiB each way
CHUNK = 1 << 20


def big_chunks() -> list[bytes]:
    """100 distinct 1 MiB chunks (a seeded generator, so both ends agree)."""
    base = random.Random(7).randbytes(CHUNK)
    return [i.to_bytes(4, "big") + base[4:] for i in range(BIG // CHUNK)]


@pytest.mark.parametrize("offload", [False, True], ids=["plain", "offload"])
def test_100_mib_each_way_with_sha256(offload: bool) -> None:
    """100 MiB each way; with ``offload``, the TAP device carries 64 KiB segments
    (the kernel's TSO to us, ours to the kernel)."""
    chunks = big_chunks()
    expect = hashlib.sha256()
    for chunk in chunks:
        expect.update(chunk)

    async def body(stack: DirectStack) -> None:
        # ours -> kernel: the kernel hashes what it reads and sends the digest back.
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            h = hashlib.sha256()
            n = 0
            while data := await reader.read(1 << 18):
                h.update(data)
                n += len(data)
            writer.write(n.to_bytes(8, "big") + h.digest())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, KERNEL, 5101)
        try:
            flow = await stack.tcp.connect(KERNEL, 5101)
            for chunk in chunks:
                await flow.write(chunk)
            await flow.shutdown()
            reply = await read_all(flow)
            await flow.close()
            assert int.from_bytes(reply[:8], "big") == BIG
            assert reply[8:] == expect.digest()
        finally:
            server.close()

        # kernel -> ours: our handler hashes and answers with the digest.
        async def handler(flow: TcpFlow) -> None:  # type: ignore[override]
            h = hashlib.sha256()
            n = 0
            while data := await flow.read():
                h.update(data)
                n += len(data)
            await flow.write(n.to_bytes(8, "big") + h.digest())
            await flow.close()

        await stack.tcp.listen(6101, handler)  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection(OURS, 6101)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        writer.write_eof()
        reply = await reader.read()
        writer.close()
        assert int.from_bytes(reply[:8], "big") == BIG
        assert reply[8:] == expect.digest()
        assert (stack.stats.tcp_tso_segments > 0) == offload
        assert stack.stats.rx_bad == 0

    in_netns(body, timeout=300, offload=offload)


def test_syn_flood_through_tap_leaves_connections_working() -> None:
    """5,000 SYNs from spoofed sources, written as raw frames on the kernel's side of
    the TAP device: the backlog stays bounded, SYN cookies answer, a connection made
    before the flood and one made after it both work."""
    from mirage.net import PacketNetwork
    from mirage.tcpip.ethernet import ETHERTYPE_IPV4, EthernetFrame
    from mirage.tcpip.ipv4 import Ipv4Packet
    from mirage.tcpip.tcp import PROTO_TCP, SYN, TcpSegment

    async def body(stack: DirectStack) -> None:
        async def echo(flow: TcpFlow) -> None:  # type: ignore[override]
            while data := await flow.read():
                await flow.write(data)
            await flow.close()

        await stack.tcp.listen(6201, echo)  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection(OURS, 6201)
        writer.write(b"before")
        assert await reader.readexactly(6) == b"before"
        raw = await PacketNetwork.connect(interface="mtap0")
        rng = random.Random(11)
        ours = bytes((10, 9, 0, 2))
        try:
            for i in range(5000):
                src = rng.randbytes(4)
                syn = TcpSegment(
                    rng.randrange(1024, 65535), 6201, rng.getrandbits(32), 0, SYN, 1000
                )
                packet = Ipv4Packet(src, ours, PROTO_TCP, syn.encode(src, ours)).encode()
                await raw.write(EthernetFrame(stack.mac, raw.mac, ETHERTYPE_IPV4, packet).encode())
                if i % 200 == 0:
                    await asyncio.sleep(0.01)  # let the stack keep up (no frame lost)
            for _ in range(200):
                if stack.stats.syn_cookies_sent + len(stack._syn_received) >= 4500:
                    break
                await asyncio.sleep(0.02)
        finally:
            await raw.disconnect()
        assert len(stack._syn_received) <= stack.listen_backlog
        assert len(stack.conns) <= stack.listen_backlog + 2
        assert stack.stats.syn_cookies_sent > 4000
        writer.write(b"after")
        assert await reader.readexactly(5) == b"after"
        writer.close()
        reader2, writer2 = await asyncio.open_connection(OURS, 6201)
        writer2.write(b"new")
        assert await reader2.readexactly(3) == b"new"
        writer2.close()

    in_netns(body, timeout=120)
