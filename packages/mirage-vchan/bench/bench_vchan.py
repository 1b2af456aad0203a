"""vchan throughput and latency between two processes (two simulated domains),
beside the same load over a Unix socket pair with asyncio streams.

Throughput: the server streams MiB to the client, which counts them and answers when
it has all. Latency: 1-byte round trips. Prints both and the ratios.
Run it alone: ``python bench_vchan.py`` (``nox -s bench-vchan``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from mirage.vchan import VchanFlow
from mirage.xen.sim import SimHypervisor
from mirage.xen.xenstore import AsyncClient, XenstoreDaemon

MIB = 1 << 20
TOTAL = 32 * MIB
CHUNK = 64 * 1024
PINGS = 2000
RING = 64 * 1024  # vchan ring sizes asked for (libxenvchan's default is 1-2 KiB)


# -- the peer process ---------------------------------------------------------------


async def child_vchan(root: str, xs_path: str) -> None:
    domain = SimHypervisor(root).domain(2)
    xs = await AsyncClient.open(xs_path)
    flow = await VchanFlow.connect(domain, xs, 1, "bench")
    await child_loop(flow.read, flow.write)
    await flow.close()
    await xs.close()
    domain.close()


async def child_socket(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    await child_loop(lambda: reader.read(MIB), write)
    writer.close()


async def child_loop(read, write) -> None:  # type: ignore[no-untyped-def]
    got = 0
    while got < TOTAL:
        data = await read()
        if not data:
            return
        got += len(data)
    await write(b"!")
    for _ in range(PINGS):
        data = await read()
        if not data:
            return
        await write(data)


# -- the measuring process -------------------------------------------------------------


async def measure(read, write) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    block = os.urandom(CHUNK)
    start = time.perf_counter()
    for _ in range(TOTAL // CHUNK):
        await write(block)
    assert await read() == b"!"
    throughput = TOTAL / MIB / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(PINGS):
        await write(b"x")
        assert await read() == b"x"
    latency = (time.perf_counter() - start) / PINGS * 1e6
    return throughput, latency


async def bench_vchan(root: Path) -> tuple[float, float]:
    daemon = XenstoreDaemon()
    await daemon.start(root / "xs")
    hv = SimHypervisor(root / "hv")
    domain = hv.domain(1)
    xs = await AsyncClient.open(str(root / "xs"))
    listening = asyncio.create_task(
        VchanFlow.listen(domain, xs, 2, "bench", read_min=RING, write_min=RING)
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--vchan", str(hv.root), str(root / "xs")
    )
    flow = await listening
    result = await measure(flow.read, flow.write)
    await child.wait()
    await flow.close()
    await xs.close()
    domain.close()
    await daemon.stop()
    return result


async def bench_socket() -> tuple[float, float]:
    ours, theirs = socket.socketpair()
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--socket", str(theirs.fileno()), pass_fds=[theirs.fileno()]
    )
    theirs.close()
    reader, writer = await asyncio.open_unix_connection(sock=ours)

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    result = await measure(lambda: reader.read(MIB), write)
    await child.wait()
    writer.close()
    return result


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bvc"))
    try:
        v_tp, v_lat = asyncio.run(bench_vchan(root))
        s_tp, s_lat = asyncio.run(bench_socket())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"two processes, {TOTAL // MIB} MiB in {CHUNK // 1024} KiB writes; {PINGS} round trips")
    print(f"  {'':48} {'MiB/s':>8} {'round trip µs':>14}")
    print(f"  {'Unix socket pair (asyncio streams)':48} {s_tp:8.0f} {s_lat:14.1f}")
    print(
        f"  {f'vchan, simulated hypervisor, {RING // 1024} KiB rings':48} {v_tp:8.0f} {v_lat:14.1f}"
    )
    print(f"  ratio vchan / socket: throughput {v_tp / s_tp:.2f}, latency {v_lat / s_lat:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--vchan":
        asyncio.run(child_vchan(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--socket":
        asyncio.run(child_socket(int(sys.argv[2])))
    else:
        main()
