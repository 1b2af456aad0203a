"""xenstore operations per second: our daemon, driven by our client and by Xen's own
C client (libxenstore, Debian's libxenstore4, through ctypes) and by the command-line
tools, beside the same load on a minimal Unix-socket key-value server.

Each round is WRITE then READ of one key. Prints operations per second and ratios.

Then Ethernet frames per second through netfront and netback over the simulated
hypervisor (both ends in this process), each way, beside the same frames through a
Unix datagram socket pair driven by the same event loop.
Run it alone: ``python bench_xen.py`` (``nox -s bench-xen``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mirage.xen.xenstore import Client

ROUNDS = 3000
TOOL_ROUNDS = 100
LEN = struct.Struct("<BI")


@contextlib.contextmanager
def xenstored(root: Path) -> Iterator[str]:
    path = str(root / "xs")
    script = shutil.which("mirage-xenstored", path=os.path.dirname(sys.executable))
    cmd = [script] if script else [sys.executable, "-m", "mirage.xen.xenstore._daemon"]
    proc = subprocess.Popen([*cmd, "--socket", path])
    try:
        while not os.path.exists(path):
            time.sleep(0.01)
        yield path
    finally:
        proc.terminate()
        proc.wait()


# -- the baseline: a key-value server on a Unix socket, in the same asyncio style ----


async def _kv_serve(path: str, ready: threading.Event, stop: asyncio.Event) -> None:
    store: dict[bytes, bytes] = {}

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                op, n = LEN.unpack(await reader.readexactly(LEN.size))
                body = await reader.readexactly(n)
                if op == 1:  # set: key NUL value
                    key, _, value = body.partition(b"\0")
                    store[key] = value
                    writer.write(LEN.pack(0, 2) + b"OK")
                else:
                    value = store.get(body, b"")
                    writer.write(LEN.pack(0, len(value)) + value)
                await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(client, path=path)
    ready.set()
    await stop.wait()
    server.close()


class KvClient:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)

    def _call(self, op: int, body: bytes) -> bytes:
        self.sock.sendall(LEN.pack(op, len(body)) + body)
        head = self._exactly(LEN.size)
        return self._exactly(LEN.unpack(head)[1])

    def _exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def write(self, key: str, value: str) -> None:
        self._call(1, key.encode() + b"\0" + value.encode())

    def read(self, key: str) -> bytes:
        return self._call(2, key.encode())


def kv_baseline(root: Path) -> float:
    # In a process of its own, as mirage-xenstored is.
    path = str(root / "kv")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--kv-server", path], stdout=subprocess.DEVNULL
    )
    try:
        while not os.path.exists(path):
            time.sleep(0.01)
        client = KvClient(path)
        rate = timed(lambda i: (client.write("/b/k", str(i)), client.read("/b/k")), ROUNDS)
        client.sock.close()
    finally:
        proc.terminate()
        proc.wait()
    return rate


def timed(fn: Callable[[int], object], rounds: int) -> float:
    """Operations (two per round) per second."""
    for i in range(20):
        fn(i)
    start = time.perf_counter()
    for i in range(rounds):
        fn(i)
    return 2 * rounds / (time.perf_counter() - start)


def ours(path: str) -> float:
    with Client(path) as c:
        return timed(lambda i: (c.write("/b/k", str(i)), c.read("/b/k")), ROUNDS)


def libxenstore(path: str) -> float | None:
    name = ctypes.util.find_library("xenstore") or "libxenstore.so.4"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    os.environ["XENSTORED_PATH"] = path
    lib.xs_open.restype = ctypes.c_void_p
    lib.xs_open.argtypes = [ctypes.c_ulong]
    lib.xs_write.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p]
    lib.xs_write.argtypes += [ctypes.c_void_p, ctypes.c_uint]
    lib.xs_read.restype = ctypes.c_void_p
    lib.xs_read.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p]
    lib.xs_read.argtypes += [ctypes.POINTER(ctypes.c_uint)]
    lib.xs_close.argtypes = [ctypes.c_void_p]
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]
    handle = lib.xs_open(0)
    if not handle:
        return None
    length = ctypes.c_uint()

    def round_trip(i: int) -> None:
        value = str(i).encode()
        if not lib.xs_write(handle, 0, b"/b/k", value, len(value)):
            raise OSError("xs_write failed")
        got = lib.xs_read(handle, 0, b"/b/k", ctypes.byref(length))
        if not got:
            raise OSError("xs_read failed")
        libc.free(got)

    try:
        return timed(round_trip, ROUNDS)
    finally:
        lib.xs_close(handle)


def tools(path: str) -> float | None:
    if shutil.which("xenstore-write") is None:
        return None
    env = {**os.environ, "XENSTORED_PATH": path}

    def round_trip(i: int) -> None:
        subprocess.run(["xenstore-write", "/b/k", str(i)], env=env, check=True)
        subprocess.run(["xenstore-read", "/b/k"], env=env, check=True, stdout=subprocess.DEVNULL)

    return timed(round_trip, TOOL_ROUNDS)


FRAMES = 20000
FRAME = bytes(6) + bytes(6) + b"\x88\xb5" + bytes(1500)


async def _netif_rates() -> tuple[float, float]:
    from mirage.xen.netback import Netback
    from mirage.xen.netfront import Netfront
    from mirage.xen.testing import SimMachine
    from mirage.xen.xenbus import create_device

    async with SimMachine() as machine:
        dom0, xs0 = await machine.domain(0)
        dom1, xs1 = await machine.guest(1)
        await create_device(xs0, "vif", 1, 0, 0)
        await xs0.write("/local/domain/1/device/vif/0/mac", "00:16:3e:00:00:01")
        serving = asyncio.create_task(Netback.serve(dom0, xs0, 1, 0))
        front = await Netfront.connect(dom1, xs1)
        back = await serving
        counts = [0, 0]
        done = [asyncio.Event(), asyncio.Event()]

        def counter(i: int) -> Callable[[bytes], None]:
            def count(frame: bytes) -> None:
                counts[i] += 1
                if counts[i] >= FRAMES:
                    done[i].set()

            return count

        tasks = [
            asyncio.create_task(back.listen(counter(0))),
            asyncio.create_task(front.listen(counter(1))),
        ]
        start = time.perf_counter()
        for _ in range(FRAMES):
            await front.write(FRAME)
        await done[0].wait()
        tx = FRAMES / (time.perf_counter() - start)
        start = time.perf_counter()
        for sent in range(0, FRAMES, 200):  # the backend queues at most 256 frames
            for _ in range(200):
                await back.write(FRAME)
            while counts[1] < sent + 200:
                await asyncio.sleep(0)
        rx = FRAMES / (time.perf_counter() - start)
        await front.disconnect()
        await back.disconnect()
        for t in tasks:
            t.cancel()
    return tx, rx


async def _socketpair_rate() -> float:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    b.setblocking(False)
    loop = asyncio.get_running_loop()
    got = 0
    finished = asyncio.Event()

    def readable() -> None:
        nonlocal got
        with contextlib.suppress(BlockingIOError):
            while True:
                b.recv(2048)
                got += 1
        if got >= FRAMES:
            finished.set()

    loop.add_reader(b.fileno(), readable)
    start = time.perf_counter()
    for sent in range(0, FRAMES, 200):
        for _ in range(200):
            await loop.sock_sendall(a, FRAME)
        while got < sent + 200:
            await asyncio.sleep(0)
    await finished.wait()
    rate = FRAMES / (time.perf_counter() - start)
    loop.remove_reader(b.fileno())
    a.close()
    b.close()
    return rate


def netif_bench() -> None:
    tx, rx = asyncio.run(_netif_rates())
    pair = asyncio.run(_socketpair_rate())
    print(f"Ethernet frames of {len(FRAME)} bytes, {FRAMES} each way, frames/s")
    print(f"  {'Unix datagram socket pair (same event loop)':64} {pair:10.0f}")
    print(f"  {'netfront -> netback (simulated hypervisor)':64} {tx:10.0f}   ratio {tx / pair:.2f}")
    print(f"  {'netback -> netfront (simulated hypervisor)':64} {rx:10.0f}   ratio {rx / pair:.2f}")


def main() -> None:
    netif_bench()
    root = Path(tempfile.mkdtemp(prefix="bxen"))
    try:
        baseline = kv_baseline(root)
        with xenstored(root) as path:
            results = {
                "mirage-xenstored + our client (mirage.xen.xenstore.Client)": ours(path),
                "mirage-xenstored + libxenstore (Xen's C client, ctypes)": libxenstore(path),
                "mirage-xenstored + xenstore-write/-read (a process per op)": tools(path),
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"xenstore write+read, {ROUNDS} rounds (tools: {TOOL_ROUNDS}), operations/s")
    print(f"  {'Unix-socket key-value baseline (asyncio server, sync client)':64} {baseline:10.0f}")
    for name, rate in results.items():
        if rate is None:
            print(f"  {name:64} {'skipped (peer not installed)':>10}")
        else:
            print(f"  {name:64} {rate:10.0f}   ratio to baseline {rate / baseline:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--kv-server":
        asyncio.run(_kv_serve(sys.argv[2], threading.Event(), asyncio.Event()))
    else:
        main()
