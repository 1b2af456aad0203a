"""Benchmarks of mirage-tcpip, each beside a peer or baseline in the same run.

1. Bulk TCP over a TAP device in a throw-away network namespace, our stack against
   the Linux kernel's TCP (a socket peer in another process), both directions, with
   plain 1500-byte frames and with TAP offload (64 KiB segments both ways); beside
   it the kernel against itself over a veth pair (the ceiling of this machine) and,
   if it is installed and importable, PyTCP (plain frames: it has no offload).
   Needs root; skipped with a message otherwise.
2. Checksum speed: the accelerator in use beside the pure-Python fallback.

(Loss recovery beside smoltcp's simulated-link table is ``bench_loss.py``.)

Run: ``python bench_tcpip.py`` (``--quick`` for smaller transfers).
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

QUICK = "--quick" in sys.argv
BULK = (8 if QUICK else 64) << 20
PYTCP_BULK = (2 if QUICK else 8) << 20


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns")


@contextmanager
def netns() -> Iterator[str]:
    name = "mirage-bench-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
        _setns(target)
        os.close(target)
        ip("link", "set", "lo", "up")
        yield name
    finally:
        _setns(original)
        os.close(original)
        subprocess.run(["ip", "netns", "del", name], check=False)


def can_use_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespace and TAP device)"
    if not os.path.exists("/dev/net/tun") or shutil.which("ip") is None:
        return "needs /dev/net/tun and iproute2"
    return None


def mbit(nbytes: int, seconds: float) -> float:
    return nbytes * 8 / seconds / 1e6


# --------------------------------------------------------------------------- TAP


KERNEL_PEER = """
import hashlib, random, socket, sys, time
mode, host, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
payload = random.Random(1).randbytes(1 << 20)
if mode == "sink":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen()
    print("ready", flush=True)
    c, _ = s.accept()
    h = hashlib.sha256(); n = 0
    while data := c.recv(1 << 20):
        h.update(data); n += len(data)
    print(n, h.hexdigest(), flush=True)
else:
    for attempt in range(100):
        try:
            c = socket.create_connection((host, port), timeout=30)
            break
        except OSError:
            time.sleep(0.1)
    sent = 0
    while sent < size:
        c.sendall(payload); sent += len(payload)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    print(sent, flush=True)
"""


async def ours_vs_kernel(size: int, *, offload: bool = False) -> dict[str, float]:
    """Our stack against a kernel socket peer in another process (so that the peer's
    application code does not share our event loop), both directions, checked by
    SHA-256 (sending) and byte count (receiving)."""
    from mirage.net import TapNetwork
    from mirage.tcpip.stack import DirectStack, TcpFlow

    payload = random.Random(1).randbytes(1 << 20)
    net = await TapNetwork.connect(name="mbench0", offload=offload)
    ip("addr", "add", "10.77.0.1/24", "dev", "mbench0")
    stack = await DirectStack.connect(network=net, ipv4="10.77.0.2/24")
    results: dict[str, float] = {}

    async def peer(*args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", KERNEL_PEER, *args, stdout=asyncio.subprocess.PIPE
        )

    try:
        # ours -> kernel
        sink = await peer("sink", "10.77.0.1", "5201", str(size))
        assert sink.stdout is not None
        await sink.stdout.readline()
        flow = await stack.tcp.connect("10.77.0.1", 5201)
        expect = hashlib.sha256()
        start = time.perf_counter()
        sent = 0
        while sent < size:
            await flow.write(payload)
            expect.update(payload)
            sent += len(payload)
        await flow.shutdown()
        n_text, digest = (await sink.stdout.readline()).split()
        results["send"] = mbit(int(n_text), time.perf_counter() - start)
        assert int(n_text) == size and digest.decode() == expect.hexdigest(), "corrupted"
        await flow.close()
        await sink.wait()

        # kernel -> ours
        got: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        started: list[float] = []

        async def handler(flow: TcpFlow) -> None:
            n = 0
            started.append(time.perf_counter())
            while data := await flow.read():
                n += len(data)
            got.set_result(n)
            await flow.write(b"k")
            await flow.close()

        await stack.tcp.listen(5202, handler)  # type: ignore[arg-type]
        source = await peer("source", "10.77.0.2", "5202", str(size))
        n = await got
        results["receive"] = mbit(n, time.perf_counter() - started[0])
        assert n == size
        await source.wait()
    finally:
        await stack.disconnect()
        await net.disconnect()
    return results


def kernel_vs_kernel(size: int) -> float:
    """Kernel to kernel over a veth pair (the other end in a second namespace)."""
    other = "mirage-bench-peer-" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", other], check=True)
    try:
        ip("link", "add", "mveth0", "type", "veth", "peer", "name", "mveth1")
        ip("link", "set", "mveth1", "netns", other)
        ip("addr", "add", "10.78.0.1/24", "dev", "mveth0")
        ip("link", "set", "mveth0", "up")
        peer = ["ip", "netns", "exec", other]
        subprocess.run([*peer, "ip", "addr", "add", "10.78.0.2/24", "dev", "mveth1"], check=True)
        subprocess.run([*peer, "ip", "link", "set", "mveth1", "up"], check=True)
        subprocess.run([*peer, "ip", "link", "set", "lo", "up"], check=True)
        code = (
            "import socket,sys;s=socket.socket();s.bind(('10.78.0.2',5203));s.listen();"
            "print('ready',flush=True);c,_=s.accept();n=0\n"
            "while (d:=c.recv(1<<20)): n+=len(d)\n"
            "print(n)"
        )
        proc = subprocess.Popen(
            [*peer, sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.3)
        payload = bytes(1 << 20)
        with socket.create_connection(("10.78.0.2", 5203), timeout=30) as s:
            start = time.perf_counter()
            for _ in range(size >> 20):
                s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            n = int(proc.stdout.readline())
            elapsed = time.perf_counter() - start
        proc.wait()
        return mbit(n, elapsed)
    finally:
        subprocess.run(["ip", "netns", "del", other], check=False)


PYTCP_PEER = """
import sys
from pytcp import TcpIpStack
from pytcp.lib import socket
iface, addr, mode = sys.argv[1], sys.argv[2], sys.argv[4]
port, size = int(sys.argv[3]), int(sys.argv[5])
stack = TcpIpStack(interface=iface, ip4_address=addr + "/24", mac_address="02:00:00:00:79:02")
stack.start()
s = socket.socket(socket.AF_INET4, socket.SOCK_STREAM)
s.bind((addr, port))
s.listen()
print("ready", flush=True)
c, _ = s.accept()
n = 0
if mode == "receive":
    while d := c.recv():
        n += len(d)
else:
    chunk = bytes(65536)
    while n < size:
        n += c.send(chunk[: min(65536, size - n)])
    # PyTCP's send() only appends to the session's buffer; stopping the stack now
    # would drop what is not yet sent. Wait for the receiver to close first.
    while c.recv():
        pass
print(n, flush=True)
c.close()
stack.stop()
"""

PYTCP_NOTE = """\
  (PyTCP's send() only appends to its session's buffer, so its sender waits for the
  receiver's FIN before stopping its stack; it sends one segment per timer tick.
  PyTCP 2.7.6 keeps sequence numbers unwrapped: a transfer that crosses 2**32 in
  either direction kills its transmit thread (struct.error), shown as a failure.)"""


def pytcp_python() -> str | None:
    """An interpreter that imports PyTCP: $PYTCP_PYTHON, or this one."""
    candidate = os.environ.get("PYTCP_PYTHON", sys.executable)
    probe = subprocess.run([candidate, "-c", "import pytcp"], capture_output=True, check=False)
    return candidate if probe.returncode == 0 else None


def pytcp_vs_kernel(python: str, size: int) -> tuple[dict[str, float], dict[str, str]]:
    """PyTCP (2.7, threads, its own TAP) against the kernel's TCP, both directions:
    Mbit/s by direction, and why a direction failed (PyTCP's last error line)."""
    results: dict[str, float] = {}
    failures: dict[str, str] = {}
    for mode, port in (("receive", 5301), ("send", 5302)):
        name = f"mpytcp{port % 10}"
        peer = subprocess.Popen(
            [python, "-O", "-c", PYTCP_PEER, name, "10.79.0.2", str(port), mode, str(size)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert peer.stdout is not None and peer.stderr is not None
        n = 0
        try:
            for _ in range(100):
                if os.path.exists(f"/sys/class/net/{name}"):
                    break
                time.sleep(0.05)
            ip("addr", "add", "10.79.0.1/24", "dev", name)
            ip("link", "set", name, "up")
            peer.stdout.readline()
            time.sleep(0.5)  # PyTCP's own ARP/ND start-up
            with socket.create_connection(("10.79.0.2", port), timeout=15) as s:
                start = time.perf_counter()
                if mode == "receive":
                    payload = bytes(1 << 20)
                    for _ in range(size >> 20):
                        s.sendall(payload)
                        n += len(payload)
                    s.shutdown(socket.SHUT_WR)
                    n = int(peer.stdout.readline())
                else:
                    while data := s.recv(1 << 20):
                        n += len(data)
                        if n >= size:
                            break
                results[mode] = mbit(n, time.perf_counter() - start)
            if mode == "receive":
                peer.wait(30)
        except (TimeoutError, ValueError):
            failures[mode] = f"no progress for 15 s after {n} bytes"
        finally:
            if peer.poll() is None:
                peer.kill()
            _, err = peer.communicate()
            lines = [line for line in err.splitlines() if line.strip()]
            if mode in failures and lines:
                failures[mode] += f"; PyTCP: {lines[-1].strip()}"
    return results, failures


def bench_tap() -> None:
    print("== bulk TCP over TAP (Linux kernel as the peer, in its own process) ==")
    reason = can_use_netns()
    if reason:
        print(f"skipped: {reason}")
        return
    with netns():
        ours = asyncio.run(ours_vs_kernel(BULK))
        tso = asyncio.run(ours_vs_kernel(BULK, offload=True))
        kernel = kernel_vs_kernel(BULK)
    print(f"mirage-tcpip -> kernel : {ours['send']:8.1f} Mbit/s (1500-byte frames)")
    print(f"kernel -> mirage-tcpip : {ours['receive']:8.1f} Mbit/s (1500-byte frames)")
    print(f"mirage-tcpip -> kernel : {tso['send']:8.1f} Mbit/s (TAP offload: 64 KiB segments)")
    print(f"kernel -> mirage-tcpip : {tso['receive']:8.1f} Mbit/s (TAP offload: 64 KiB segments)")
    print(f"kernel -> kernel (veth): {kernel:8.1f} Mbit/s (ceiling)")
    print(
        f"ratio ours/kernel      : send {ours['send'] / kernel:.3f},"
        f" receive {ours['receive'] / kernel:.3f} (offload: {tso['send'] / kernel:.3f},"
        f" {tso['receive'] / kernel:.3f})"
    )
    python = pytcp_python()
    if python is None:
        print("PyTCP: skipped, not importable (pip install pytcp, or set PYTCP_PYTHON)")
        return
    with netns():
        theirs, failed = pytcp_vs_kernel(python, PYTCP_BULK)
    for mode, arrow, label in (
        ("send", "PyTCP -> kernel", "send"),
        ("receive", "kernel -> PyTCP", "recv"),
    ):
        if mode in theirs:
            print(f"{arrow}        : {theirs[mode]:8.1f} Mbit/s ({PYTCP_BULK >> 20} MiB)")
            print(
                f"ratio ours/PyTCP {label}  : {ours[mode] / theirs[mode]:8.1f}x (1500-byte frames)"
            )
        else:
            print(f"{arrow}        : failed, {failed.get(mode, 'no result')}")
    print(PYTCP_NOTE)


# --------------------------------------------------------------------------- checksum


def timeit(fn: Callable[[bytes], Any], data: bytes, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        fn(data)
    return (time.perf_counter() - start) / rounds


def bench_checksum() -> None:
    from mirage.tcpip import _checksum_py, checksum

    print("\n== Internet checksum of a 1500-byte packet ==")
    data = random.Random(2).randbytes(1500)
    rounds = 20_000
    py = timeit(_checksum_py.checksum, data, rounds)
    chosen = timeit(checksum.checksum, data, rounds)
    print(f"pure Python         : {py * 1e9:8.0f} ns")
    print(
        f"in use ({checksum.IMPLEMENTATION:6})     : {chosen * 1e9:8.0f} ns"
        f" (ratio {py / chosen:.2f}x)"
    )


if __name__ == "__main__":
    bench_checksum()
    bench_tap()
