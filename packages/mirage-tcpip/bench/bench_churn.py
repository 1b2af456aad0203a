"""Connection churn: sequential connect/accept/close cycles a second.

1. In process over ``vnet`` (real time, no faults): one direct stack connects to
   another 100,000 times; the server accepts and closes first, the client reads the
   end of stream and closes. Both stacks run on the one event loop, so each cycle
   pays for both ends. The server's TIME-WAIT lasts 2 MSL (MSL shortened to 1 s so
   the bench can wait it out); afterwards both connection tables must be empty.
2. Over TAP, a kernel client process connecting to our listener (our stack accepts
   and closes), beside the same client against a kernel server across a veth pair.
   Needs root; skipped with a message otherwise.

Run: ``python bench_churn.py`` (``--quick`` for fewer cycles).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tcpip import QUICK, can_use_netns, ip, netns

VNET_CYCLES = 10_000 if QUICK else 100_000
TAP_CYCLES = 2_000 if QUICK else 20_000

CLIENT = """
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for attempt in range(100):
    try:
        socket.create_connection((host, port), timeout=10).close()
        break
    except OSError:
        time.sleep(0.1)
start = time.perf_counter()
for _ in range(n):
    s = socket.create_connection((host, port), timeout=10)
    if s.recv(1) != b"":
        raise SystemExit("expected the server to close")
    s.close()
print(n / (time.perf_counter() - start))
"""

KERNEL_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1024)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""


async def vnet_churn(cycles: int) -> tuple[float, dict[str, int]]:
    """Cycles a second (wall clock) and what is left afterwards."""
    from mirage.net import Switch, VnetInterface
    from mirage.tcpip.stack import DirectStack, TcpFlow
    from mirage.tcpip.tcp import TcpConfig

    switch = Switch()
    na = await VnetInterface.connect(switch=switch, seed=1)
    nb = await VnetInterface.connect(switch=switch, seed=2)
    config = TcpConfig(msl=1.0)
    client = await DirectStack.connect(network=na, ipv4="10.84.0.1/24", tcp_config=config)
    server = await DirectStack.connect(network=nb, ipv4="10.84.0.2/24", tcp_config=config)

    async def handler(flow: TcpFlow) -> None:
        await flow.close()

    await server.tcp.listen(80, handler)  # type: ignore[arg-type]
    await client.resolve("10.84.0.2")
    start = time.perf_counter()
    cpu = time.process_time()
    for _ in range(cycles):
        flow = await client.tcp.connect("10.84.0.2", 80)
        await flow.read()
        await flow.close()
    rate = cycles / (time.perf_counter() - start)
    cpu_rate = cycles / (time.process_time() - cpu)
    peak = len(server.conns)
    await asyncio.sleep(2 * config.msl + 0.5)
    left = {
        "cycles per CPU second": round(cpu_rate),
        "TIME-WAIT at the end": peak,
        "client connections left": len(client.conns),
        "server connections left": len(server.conns),
    }
    await client.disconnect()
    await server.disconnect()
    return rate, left


async def ours_tap(cycles: int) -> tuple[float, float]:
    """Cycles a second as the client saw them, and per CPU second of this process
    (our stack alone: the kernel's work for the client is in the client's process,
    except what the kernel does inside our TAP writes)."""
    from mirage.net import TapNetwork
    from mirage.tcpip.stack import DirectStack, TcpFlow

    net = await TapNetwork.connect(name="mchurn0")
    ip("addr", "add", "10.85.0.1/24", "dev", "mchurn0")
    stack = await DirectStack.connect(network=net, ipv4="10.85.0.2/24")

    async def handler(flow: TcpFlow) -> None:
        await flow.close()

    try:
        await stack.tcp.listen(80, handler)  # type: ignore[arg-type]
        cpu = time.process_time()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENT,
            "10.85.0.2",
            "80",
            str(cycles),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 900)
        if proc.returncode != 0:
            raise RuntimeError("churn client failed")
        return float(out), cycles / (time.process_time() - cpu)
    finally:
        await stack.disconnect()
        await net.disconnect()


def kernel_tap(cycles: int) -> float:
    other = "mirage-churn-peer-" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", other], check=True)
    try:
        ip("link", "add", "mcveth0", "type", "veth", "peer", "name", "mcveth1")
        ip("link", "set", "mcveth1", "netns", other)
        ip("addr", "add", "10.86.0.1/24", "dev", "mcveth0")
        ip("link", "set", "mcveth0", "up")
        peer = ["ip", "netns", "exec", other]
        subprocess.run([*peer, "ip", "addr", "add", "10.86.0.2/24", "dev", "mcveth1"], check=True)
        subprocess.run([*peer, "ip", "link", "set", "mcveth1", "up"], check=True)
        server = subprocess.Popen(
            [*peer, sys.executable, "-c", KERNEL_SERVER, "10.86.0.2", "80"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            server.stdout.readline()
            out = subprocess.run(
                [sys.executable, "-c", CLIENT, "10.86.0.2", "80", str(cycles)],
                check=True,
                capture_output=True,
                text=True,
                timeout=900,
            ).stdout
            return float(out)
        finally:
            server.kill()
            server.wait()
    finally:
        subprocess.run(["ip", "netns", "del", other], check=False)


def main() -> None:
    print(f"== connection churn: {VNET_CYCLES} cycles over vnet, two direct stacks ==")
    rate, left = asyncio.run(vnet_churn(VNET_CYCLES))
    print(f"mirage <-> mirage (vnet): {rate:8.0f} cycles/s (both ends on one core)")
    for key, value in left.items():
        print(f"  {key:24}: {value}")
    assert left["client connections left"] == left["server connections left"] == 0
    print(f"\n== connection churn over TAP: {TAP_CYCLES} cycles, kernel client ==")
    reason = can_use_netns()
    if reason:
        print(f"skipped: {reason}")
        return
    with netns():
        mine, mine_cpu = asyncio.run(ours_tap(TAP_CYCLES))
    with netns():
        theirs = kernel_tap(TAP_CYCLES)
    print(f"kernel -> mirage (TAP)  : {mine:8.0f} cycles/s ({mine_cpu:.0f} per CPU second)")
    print(f"kernel -> kernel (veth) : {theirs:8.0f} cycles/s")
    print(f"ratio mirage/kernel     : {mine / theirs:8.2f}")


if __name__ == "__main__":
    main()
