"""IPv6 with the Linux kernel over a TAP device in a throw-away network namespace:
our link-local address passes DAD, dnsmasq (as the router) advertises a prefix and we
take a SLAAC address from it; the kernel pings both addresses (ping -6), we ping the
kernel, and TCP and UDP run both ways over IPv6."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mirage.core.testing import run
from mirage.net import TapNetwork
from mirage.net.testing import inside_netns, ip, netns_skip_reason
from mirage.tcpip.ipv6 import link_local
from mirage.tcpip.stack import DirectStack, TcpFlow

_skip = (
    netns_skip_reason()
    or (None if shutil.which("dnsmasq") else "needs dnsmasq (apt package dnsmasq-base)")
    or (None if shutil.which("ping") else "needs ping (apt package iputils-ping)")
)
pytestmark = pytest.mark.skipif(_skip is not None, reason=_skip or "")

TAP = "mtap0"
KERNEL6 = "fd00:9::1"
SIZE = 1 << 20


@contextmanager
def router_advertisements() -> Iterator[None]:
    proc = subprocess.Popen(
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
            "--enable-ra",
            "--dhcp-range=fd00:9::,ra-only,64,10m",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(5)


async def ping6(target: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", target, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    return out


def test_ipv6_with_the_kernel() -> None:
    async def main() -> None:
        with open("/proc/sys/net/ipv6/conf/default/accept_dad", "w") as f:
            f.write("0")  # the kernel's own addresses are usable at once
        net = await TapNetwork.connect(name=TAP)
        ip("-6", "addr", "add", f"{KERNEL6}/64", "dev", TAP, "nodad")
        with router_advertisements():
            stack = await DirectStack.connect(network=net, ipv4="10.9.10.2/24", ipv6=True)
            try:
                ll = stack.ndp.link_local if stack.ndp else None
                assert ll == link_local(net.mac)
                ours = await stack.ipv6_global(timeout=15)
                assert ours.startswith("fd00:9::")
                # dnsmasq advertises the kernel as a router, from its link-local address.
                router = stack.ndp.default_router(stack.now()) if stack.ndp else None
                kernel_ll = ip("-6", "addr", "show", "dev", TAP, "scope", "link")
                assert router is not None and ipaddress_text(router) in kernel_ll
                # ping6 of both of our addresses, and of the kernel from us.
                await ping6(f"{ipaddress_text(ll)}%{TAP}")
                out = await ping6(ours)
                assert b"3 received" in out
                assert await stack.ping(KERNEL6) >= 0
                # TCP, the kernel connecting to us.
                payload = bytes(range(256)) * (SIZE // 256)

                async def handler(flow: TcpFlow) -> None:
                    buf = bytearray()
                    while data := await flow.read():
                        buf += data
                    await flow.write(hashlib.sha256(buf).hexdigest().encode())
                    await flow.close()

                await stack.tcp.listen(7400, handler)
                reader, writer = await asyncio.open_connection(ours, 7400)
                writer.write(payload)
                await writer.drain()
                writer.write_eof()
                assert (
                    await asyncio.wait_for(reader.read(), 20)
                    == hashlib.sha256(payload).hexdigest().encode()
                )
                writer.close()
                # TCP, us connecting to the kernel.
                got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

                async def kernel_server(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                    got.set_result(await r.read())
                    w.write(b"bye")
                    await w.drain()
                    w.close()

                server = await asyncio.start_server(kernel_server, KERNEL6, 7401)
                flow = await stack.tcp.connect(KERNEL6, 7401)
                assert flow.peer == (KERNEL6, 7401)
                await flow.write(payload)
                await flow.shutdown()
                assert await asyncio.wait_for(got, 20) == payload
                assert await asyncio.wait_for(flow.read(), 5) == b"bye"
                await flow.close()
                server.close()
                # UDP both ways.
                queue: asyncio.Queue[tuple[str, int, bytes]] = asyncio.Queue()
                await stack.udp.listen(7402, lambda s, p, d: queue.put_nowait((s, p, d)))
                sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                sock.bind((KERNEL6, 7403))
                sock.setblocking(False)
                sock.sendto(b"to mirage", (ours, 7402))
                assert await asyncio.wait_for(queue.get(), 5) == (KERNEL6, 7403, b"to mirage")
                await stack.udp.write(KERNEL6, 7403, b"to linux", src_port=7402)
                loop = asyncio.get_running_loop()
                data, addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 100), 5)
                assert data == b"to linux" and addr[0] == ours and addr[1] == 7402
                # Fragmented both ways (4000 bytes over a 1500-byte link).
                big = bytes(range(250)) * 16
                sock.sendto(big, (ours, 7402))
                assert await asyncio.wait_for(queue.get(), 5) == (KERNEL6, 7403, big)
                await stack.udp.write(KERNEL6, 7403, big, src_port=7402)
                data, addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 8000), 5)
                assert data == big and addr[0] == ours
                assert stack.reassembler6.stats.completed == 1
                sock.close()
                assert ours in stack.ip.configured_ips()
            finally:
                await stack.disconnect()
        await net.disconnect()

    with inside_netns():
        run(main(), 50)


def ipaddress_text(raw: bytes | None) -> str:
    import ipaddress

    assert raw is not None
    return str(ipaddress.IPv6Address(raw))
