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


def in_netns(body: Callable[[DirectStack], Awaitable[None]], timeout: float = 30.0) -> None:
    async def main() -> None:
        net = await TapNetwork.connect(name="mtap0")
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
