"""wrk against three HTTP/1.1 servers serving the same small file with keep-alive:

- mirage-http: ``Server`` + ``StaticFiles`` over an in-memory store, on the host
  socket stack of mirage-unix;
- an asyncio streams server built on h11 (written here, in h11's documented style);
- uvicorn with httptools (``--http httptools``, asyncio loop), a one-route ASGI app;

and then, for HTTP/2 by prior knowledge, h2load against mirage-http and hypercorn
(the same ASGI app).

Each server runs alone, pinned to CPU 0 when ``taskset`` exists, with wrk on CPU 1:
``wrk -t1 -c50 -d<seconds>s``. Prints requests/s, the server's CPU time per request
(steadier than the rate when other work shares the host) and our ratio to each peer.
Usage: python bench_http.py [seconds]   (default 3)
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

FILE = b"<!doctype html><title>bench</title>" + b"<p>mirage for Python</p>" * 40
CONTENT_TYPE = b"text/html; charset=utf-8"


# -- the servers (each runs in its own process: bench_http.py --serve NAME PORT) --------


async def serve_mirage(port: int) -> None:
    from mirage.http import Server, StaticFiles
    from mirage.kv.memory import MemoryKv
    from mirage.unix.stack import SocketStack

    store = await MemoryKv.connect(contents={"index.html": FILE})
    stack = await SocketStack.connect(ipv4="127.0.0.1")
    await stack.tcp.listen(port, Server(StaticFiles(store)).handle)
    await asyncio.Event().wait()


async def serve_h11(port: int) -> None:
    import h11

    headers = [("content-type", CONTENT_TYPE), ("content-length", str(len(FILE)))]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data and conn.their_state is h11.IDLE:
                        return
                elif isinstance(event, h11.Request):
                    continue
                elif isinstance(event, h11.EndOfMessage):
                    out = conn.send(h11.Response(status_code=200, headers=headers))
                    out += conn.send(h11.Data(data=FILE)) + conn.send(h11.EndOfMessage())
                    writer.write(out)
                    await writer.drain()
                    if conn.our_state is h11.MUST_CLOSE:
                        return
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
        except (h11.RemoteProtocolError, ConnectionError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def asgi_app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", CONTENT_TYPE), (b"content-length", b"%d" % len(FILE))],
        }
    )
    await send({"type": "http.response.body", "body": FILE})


def serve_uvicorn(port: int) -> None:
    import uvicorn

    uvicorn.run(
        "bench_http:asgi_app",
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="asyncio",
        log_level="warning",
        access_log=False,
        app_dir=str(Path(__file__).parent),
    )


def serve_hypercorn(port: int) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    asyncio.run(serve(asgi_app, config))  # type: ignore[arg-type]


# -- the driver --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


@dataclass(frozen=True, slots=True)
class Result:
    rate: float
    """requests per second, as wrk saw them"""
    cpu_us: float
    """server CPU time per request (microseconds): steadier than the rate on a busy host"""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, seconds: int, *, h2: bool = False) -> Result | None:
    port = free_port()
    child = subprocess.Popen(
        [*pin(0), sys.executable, __file__, "--serve", name, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            print(f"{name}: did not start", file=sys.stderr)
            return None
        url = f"http://127.0.0.1:{port}/index.html"
        check = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert check.stdout == f"200 {len(FILE)}", (name, check.stdout)
        cpu_before = cpu_seconds(child.pid)
        if h2:
            command = [*pin(1), "h2load", "-c10", "-m10", "-D", str(seconds), url]
        else:
            command = [*pin(1), "wrk", "-t1", "-c50", f"-d{seconds}s", url]
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        cpu = cpu_seconds(child.pid) - cpu_before
        if h2:
            m = re.search(r"finished in [^,]+, ([0-9.]+) req/s", out.stdout)
            n = re.search(
                r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out.stdout
            )
            if not (m and n and int(n.group(1))):
                print(f"{name}: h2load failed: {out.stdout[-300:]}", file=sys.stderr)
                return None
            return Result(float(m.group(1)), cpu / int(n.group(1)) * 1e6 if cpu > 0 else 0.0)
        m = re.search(r"Requests/sec:\s+([0-9.]+)", out.stdout)
        n = re.search(r"(\d+) requests in", out.stdout)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out.stdout)
        if errors:
            print(f"{name}: wrk reported {errors.group(0)}", file=sys.stderr)
        if not (m and n):
            return None
        return Result(float(m.group(1)), cpu / int(n.group(1)) * 1e6 if cpu > 0 else 0.0)
    finally:
        child.terminate()
        child.wait(30)


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): nothing to measure")
        return 0
    peers = ["mirage", "h11"]
    if importlib.util.find_spec("h11") is None:
        print("h11 is not installed: no h11 peer")
        peers.remove("h11")
    if importlib.util.find_spec("uvicorn") and importlib.util.find_spec("httptools"):
        peers.append("uvicorn")
    else:
        print("uvicorn and httptools are not both installed: no uvicorn peer")
    print(f"wrk -t1 -c50 -d{seconds}s, a {len(FILE)}-byte file with keep-alive")
    results = {name: measure(name, seconds) for name in peers}
    for name, r in results.items():
        if r is None:
            print(f"  {name:10s} failed")
        else:
            print(f"  {name:10s} {r.rate:10.0f} requests/s {r.cpu_us:8.1f} us CPU/request")
    ours = results.get("mirage")
    targets = {"h11": 1.5, "uvicorn": 0.5}
    for peer in ("h11", "uvicorn"):
        theirs = results.get(peer)
        if ours and theirs:
            line = f"  mirage/{peer}: {ours.rate / theirs.rate:.2f}x requests/s"
            if ours.cpu_us and theirs.cpu_us:
                line += f", {theirs.cpu_us / ours.cpu_us:.2f}x by CPU per request"
            print(line + f" (target >= {targets[peer]}x)")
    bench_h2(seconds)
    return 0


def bench_h2(seconds: int) -> None:
    if shutil.which("h2load") is None:
        print("h2load is not installed (apt-get install nghttp2-client): no HTTP/2 run")
        return
    if importlib.util.find_spec("h2") is None:
        print("h2 is not installed: no HTTP/2 run")
        return
    names = ["mirage"]
    if importlib.util.find_spec("hypercorn"):
        names.append("hypercorn")
    else:
        print("hypercorn is not installed: no HTTP/2 peer")
    print(f"h2load -c10 -m10 -D {seconds} (h2c, prior knowledge), the same file")
    results = {name: measure(name, seconds, h2=True) for name in names}
    for name, r in results.items():
        if r is None:
            print(f"  {name:10s} failed")
        else:
            print(f"  {name:10s} {r.rate:10.0f} requests/s {r.cpu_us:8.1f} us CPU/request")
    ours, theirs = results.get("mirage"), results.get("hypercorn")
    if ours and theirs:
        line = f"  mirage/hypercorn: {ours.rate / theirs.rate:.2f}x requests/s"
        if ours.cpu_us and theirs.cpu_us:
            line += f", {theirs.cpu_us / ours.cpu_us:.2f}x by CPU per request"
        print(line)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        name, port = sys.argv[2], int(sys.argv[3])
        if name == "uvicorn":
            serve_uvicorn(port)
        elif name == "hypercorn":
            serve_hypercorn(port)
        else:
            asyncio.run({"mirage": serve_mirage, "h11": serve_h11}[name](port))
        sys.exit(0)
    sys.exit(main())
