"""1-byte ping-pong latency over TAP: our stack, the Linux kernel and PyTCP as the
echo server, the same kernel client measuring every round trip.

A client process (plain blocking sockets, TCP_NODELAY) sends one byte and waits for
it to come back, ``ROUNDS`` times after a warm-up, and reports the median and the
99th percentile. The echo server is, in turn: our stack on a TAP device; the kernel
in a second network namespace across a veth pair; PyTCP on its own TAP device (if
importable). Needs root; skipped with a message otherwise.

Run: ``python bench_latency.py`` (``--quick`` for fewer round trips).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tcpip import QUICK, can_use_netns, ip, netns, pytcp_python

ROUNDS = 500 if QUICK else 5000
WARMUP = 100

CLIENT = """
import json, socket, sys, time
host, port, rounds, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for attempt in range(100):
    try:
        s = socket.create_connection((host, port), timeout=10)
        break
    except OSError:
        time.sleep(0.1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
samples = []
clock = time.perf_counter
for i in range(warmup + rounds):
    t = clock()
    s.sendall(b"x")
    if s.recv(1) != b"x":
        raise SystemExit("bad echo")
    if i >= warmup:
        samples.append(clock() - t)
s.close()
samples.sort()
print(json.dumps({"median": samples[len(samples) // 2],
                  "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))]}))
"""

KERNEL_ECHO = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
print("ready", flush=True)
c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while d := c.recv(65536):
    c.sendall(d)
"""

PYTCP_ECHO = """
import sys
from pytcp import TcpIpStack
from pytcp.lib import socket
iface, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
stack = TcpIpStack(interface=iface, ip4_address=addr + "/24", mac_address="02:00:00:00:7a:02")
stack.start()
s = socket.socket(socket.AF_INET4, socket.SOCK_STREAM)
s.bind((addr, port))
s.listen()
print("ready", flush=True)
c, _ = s.accept()
while d := c.recv():
    c.send(d)
c.close()
stack.stop()
"""


async def client(host: str, port: int) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        host,
        str(port),
        str(ROUNDS),
        str(WARMUP),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    if proc.returncode != 0:
        raise RuntimeError(f"latency client failed ({proc.returncode})")
    result: dict[str, float] = json.loads(out)
    return result


async def ours() -> dict[str, float]:
    from mirage.net import TapNetwork
    from mirage.tcpip.stack import DirectStack, TcpFlow

    net = await TapNetwork.connect(name="mlat0")
    ip("addr", "add", "10.81.0.1/24", "dev", "mlat0")
    stack = await DirectStack.connect(network=net, ipv4="10.81.0.2/24")

    async def echo(flow: TcpFlow) -> None:
        while data := await flow.read():
            await flow.write(data)
        await flow.close()

    try:
        await stack.tcp.listen(7, echo)  # type: ignore[arg-type]
        return await client("10.81.0.2", 7)
    finally:
        await stack.disconnect()
        await net.disconnect()


def kernel() -> dict[str, float]:
    other = "mirage-lat-peer-" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", other], check=True)
    try:
        ip("link", "add", "mlveth0", "type", "veth", "peer", "name", "mlveth1")
        ip("link", "set", "mlveth1", "netns", other)
        ip("addr", "add", "10.82.0.1/24", "dev", "mlveth0")
        ip("link", "set", "mlveth0", "up")
        peer = ["ip", "netns", "exec", other]
        subprocess.run([*peer, "ip", "addr", "add", "10.82.0.2/24", "dev", "mlveth1"], check=True)
        subprocess.run([*peer, "ip", "link", "set", "mlveth1", "up"], check=True)
        server = subprocess.Popen(
            [*peer, sys.executable, "-c", KERNEL_ECHO, "10.82.0.2", "7"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            server.stdout.readline()
            return asyncio.run(client("10.82.0.2", 7))
        finally:
            server.kill()
            server.wait()
    finally:
        subprocess.run(["ip", "netns", "del", other], check=False)


def pytcp(python: str) -> dict[str, float]:
    name = "mlatpy0"
    server = subprocess.Popen(
        [python, "-O", "-c", PYTCP_ECHO, name, "10.83.0.2", "7"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            if Path(f"/sys/class/net/{name}").exists():
                break
            time.sleep(0.05)
        ip("addr", "add", "10.83.0.1/24", "dev", name)
        ip("link", "set", name, "up")
        assert server.stdout is not None
        server.stdout.readline()
        time.sleep(0.5)  # PyTCP's own ARP start-up
        return asyncio.run(client("10.83.0.2", 7))
    finally:
        server.kill()
        server.wait()


def show(label: str, r: dict[str, float]) -> None:
    print(f"{label:24}: median {r['median'] * 1e6:8.1f} us   p99 {r['p99'] * 1e6:8.1f} us")


def main() -> None:
    print(f"== 1-byte TCP ping-pong over TAP, {ROUNDS} round trips (kernel client) ==")
    reason = can_use_netns()
    if reason:
        print(f"skipped: {reason}")
        return
    with netns():
        mine = asyncio.run(ours())
    with netns():
        theirs = kernel()
    show("mirage-tcpip (TAP)", mine)
    show("kernel (veth)", theirs)
    print(
        f"ratio mirage/kernel     : median {mine['median'] / theirs['median']:.2f}x,"
        f" p99 {mine['p99'] / theirs['p99']:.2f}x"
    )
    python = pytcp_python()
    if python is None:
        print("PyTCP: skipped, not importable (pip install pytcp, or set PYTCP_PYTHON)")
        return
    with netns():
        py = pytcp(python)
    show("PyTCP (TAP)", py)
    print(
        f"ratio PyTCP/mirage      : median {py['median'] / mine['median']:.2f}x,"
        f" p99 {py['p99'] / mine['p99']:.2f}x"
    )


if __name__ == "__main__":
    main()
