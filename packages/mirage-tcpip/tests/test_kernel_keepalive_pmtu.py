"""Keepalive and path MTU discovery against the Linux kernel, in throw-away network
namespaces: the kernel answers our keepalive probes (and we answer its own); a kernel
router in front of a 1280-byte link sends "fragmentation needed" and our TCP
shrinks its segments so that a transfer through it completes."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import subprocess
import sys
import uuid

import pytest

from mirage.core.testing import run
from mirage.net import TapNetwork
from mirage.net.testing import inside_netns, ip, netns_skip_reason
from mirage.tcpip.stack import DirectStack
from mirage.tcpip.tcp import State

_skip = netns_skip_reason()
pytestmark = pytest.mark.skipif(_skip is not None, reason=_skip or "")

KERNEL = "10.9.7.1"
OURS = "10.9.7.2"


def test_keepalive_with_the_kernel() -> None:
    async def main() -> None:
        net = await TapNetwork.connect(name="mtap0")
        ip("addr", "add", f"{KERNEL}/24", "dev", "mtap0")
        stack = await DirectStack.connect(network=net, ipv4=f"{OURS}/24")
        server = socket.create_server((KERNEL, 7100))
        server.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            flow = await stack.tcp.connect(KERNEL, 7100)
            kernel_side, _ = await loop.sock_accept(server)
            # The kernel probes us too: after 1 s idle, every 1 s, giving up after 2
            # unanswered probes. We answer, so the connection survives.
            kernel_side.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            kernel_side.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
            kernel_side.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
            kernel_side.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
            flow.set_keepalive(idle=0.3, interval=0.2, count=3)
            conn = flow.conn
            await asyncio.sleep(3.5)
            # Ours went out and were answered each time.
            assert conn.stats_keepalives >= 5
            assert conn.keepalive_probes <= 1
            assert conn.state is State.ESTABLISHED
            # The kernel's connection is alive too (it would have reset after 3 s).
            await loop.sock_sendall(kernel_side, b"still here")
            assert await asyncio.wait_for(flow.read(), 5) == b"still here"
            # The kernel goes silent (its address is gone): our probes go unanswered
            # and the connection is given up after idle + 3 intervals.
            ip("addr", "del", f"{KERNEL}/24", "dev", "mtap0")
            await asyncio.wait_for(flow.wait_closed(), 5)
            assert conn.error == "timed out (keepalive)"
            kernel_side.close()
        finally:
            server.close()
            await stack.disconnect()
            await net.disconnect()

    with inside_netns():
        run(main(), 30)


SERVER_CODE = """
import hashlib, socket, sys
srv = socket.create_server(("10.9.8.2", 7200))
print("ready", flush=True)
conn, _ = srv.accept()
h, n = hashlib.sha256(), 0
while data := conn.recv(65536):
    h.update(data)
    n += len(data)
conn.sendall(f"{n} {h.hexdigest()}".encode())
conn.close()
"""


def test_path_mtu_discovery_through_a_kernel_router() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    peer_ns = "mirage-test-peer-" + uuid.uuid4().hex[:8]

    async def main() -> None:
        # Our stack -- mtap0 (1500) -- kernel router -- veth (1280) -- kernel server.
        subprocess.run(["ip", "netns", "add", peer_ns], check=True)
        ip("link", "add", "mv0", "mtu", "1280", "type", "veth", "peer", "name", "mv1")
        ip("link", "set", "mv1", "netns", peer_ns)
        ip("addr", "add", "10.9.8.1/24", "dev", "mv0")
        ip("link", "set", "mv0", "up")
        inside = ["ip", "netns", "exec", peer_ns]
        for cmd in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "link", "set", "mv1", "mtu", "1280", "up"],
            ["ip", "addr", "add", "10.9.8.2/24", "dev", "mv1"],
            # The server advertises a 1460-byte MSS although its link takes 1280.
            ["ip", "route", "add", "default", "via", "10.9.8.1", "advmss", "1460"],
        ):
            subprocess.run(inside + cmd, check=True, capture_output=True)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")
        server = await asyncio.create_subprocess_exec(
            *inside, sys.executable, "-c", SERVER_CODE, stdout=asyncio.subprocess.PIPE
        )
        assert server.stdout is not None
        assert await asyncio.wait_for(server.stdout.readline(), 10) == b"ready\n"
        net = await TapNetwork.connect(name="mtap0")
        ip("addr", "add", f"{KERNEL}/24", "dev", "mtap0")
        stack = await DirectStack.connect(network=net, ipv4=f"{OURS}/24", ipv4_gateway=KERNEL)
        try:
            flow = await stack.tcp.connect("10.9.8.2", 7200)
            assert flow.conn.send_mss > 1240  # from the server's MSS
            await flow.write(payload)
            await flow.shutdown()
            answer = b""
            while data := await asyncio.wait_for(flow.read(), 20):
                answer += data
            assert answer.decode() == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"
            assert stack.stats.pmtu_updates >= 1
            assert flow.conn.path_mtu == 1280
            assert flow.conn.send_mss <= 1240
            await server.wait()
            # The lowered path MTU is remembered for new connections there.
            assert stack.path_mtus[bytes((10, 9, 8, 2))][0] == 1280
        finally:
            if server.returncode is None:
                server.kill()
                await server.wait()
            await stack.disconnect()
            await net.disconnect()

    try:
        with inside_netns():
            run(main(), 40)
    finally:
        subprocess.run(["ip", "netns", "del", peer_ns], capture_output=True)
