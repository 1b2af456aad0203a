"""Run inside a real Xen dom0 (see dom0_image.py): mirage-xenstored --linux-dom0 as
dom0's xenstored, serving the kernel's xenstore ring; Debian's xenstore tools and our
client reach it through the kernel's ``/dev/xen/xenbus``. Then mirage-vchan against
libxenvchan (Xen's ``vchan-socket-proxy``, another process) through the real
gntalloc, gntdev and evtchn devices, with this xenstored between them, and a vif
whose netfront and netback both run in dom0.

Prints ``dom0-probe: ok <step>`` per step that worked; any failure raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

from mirage.vchan import VchanFlow
from mirage.xen.linux import LinuxDomain
from mirage.xen.netback import Netback
from mirage.xen.netfront import Netfront
from mirage.xen.xenbus import create_device
from mirage.xen.xenstore import AsyncClient

PROXY = "/usr/lib/xen-4.17/bin/vchan-socket-proxy"


def ok(step: str) -> None:
    print(f"dom0-probe: ok {step}", flush=True)


async def tool(*argv: str) -> str:
    # No XENSTORED_PATH and no socket: libxenstore opens /dev/xen/xenbus.
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (argv, proc.returncode, err.decode(errors="replace"))
    return out.decode()


async def our_client() -> None:
    client = await AsyncClient.open("/dev/xen/xenbus")
    assert await asyncio.wait_for(client.read("/mirage/probe"), 30) == b"hello-from-dom0"
    events = await asyncio.wait_for(client.watch("/mirage/w", "tok"), 30)
    first = await asyncio.wait_for(events.get(), 30)  # the initial event
    assert first.path == "/mirage/w", first
    await tool("xenstore-write", "/mirage/w", "fired")
    event = await asyncio.wait_for(events.get(), 30)
    assert event.path == "/mirage/w" and event.token == "tok", event
    ok("our-client read watch")
    await client.write("/mirage/ours", "from-our-client")
    assert await tool("xenstore-read", "/mirage/ours") == "from-our-client\n"
    await tool("xenstore-rm", "/mirage/ours")
    assert not await client.exists("/mirage/ours")
    ok("our-client write rm")
    await client.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def vchan_client_against_libxenvchan(dom: LinuxDomain, xs: AsyncClient) -> None:
    """libxenvchan serves (vchan-socket-proxy -m server, linking each vchan to an
    echo socket); our VchanFlow connects and gets back what it sends."""
    echo_server = await asyncio.start_unix_server(echo, "/tmp/echo.sock")
    path = "/local/domain/0/data/vchan/0/server"
    proxy = await asyncio.create_subprocess_exec(
        PROXY, "-m", "server", "0", path, "/tmp/echo.sock", env={"PATH": "/usr/bin"}
    )
    async with asyncio.timeout(60):
        while not await xs.exists(f"{path}/event-channel"):
            await asyncio.sleep(0.1)
    flow = await asyncio.wait_for(VchanFlow.connect(dom, xs, 0, "server"), 60)
    ok("vchan connected-to-libxenvchan")
    sent = bytes(i * 7 % 251 for i in range(200_000))  # several times the rings
    got = bytearray()

    async def reader() -> None:
        while len(got) < len(sent):
            data = await flow.read()
            assert data, "the stream ended early"
            got.extend(data)

    reading = asyncio.create_task(reader())
    for off in range(0, len(sent), 3001):
        await flow.write(sent[off : off + 3001])
    await asyncio.wait_for(reading, 120)
    assert bytes(got) == sent
    ok(f"vchan echo-through-libxenvchan bytes={len(sent)}")
    await asyncio.wait_for(flow.close(), 30)
    proxy.terminate()
    await asyncio.wait_for(proxy.wait(), 30)
    echo_server.close()
    print("dom0-probe: libxenvchan server stopped", flush=True)


async def vchan_server_against_libxenvchan(dom: LinuxDomain, xs: AsyncClient) -> None:
    """Our VchanFlow serves; libxenvchan connects (vchan-socket-proxy -m client,
    with its stdin and stdout as the stream)."""
    path = "/local/domain/0/data/vchan/0/client"
    listening = asyncio.create_task(VchanFlow.listen(dom, xs, 0, "client"))
    async with asyncio.timeout(60):
        while not await xs.exists(f"{path}/event-channel"):
            await asyncio.sleep(0.1)
    proxy = await asyncio.create_subprocess_exec(
        PROXY,
        "-m",
        "client",
        "0",
        path,
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin"},
    )
    flow = await asyncio.wait_for(listening, 60)
    assert proxy.stdin is not None and proxy.stdout is not None
    proxy.stdin.write(b"hello from libxenvchan\n")
    await proxy.stdin.drain()
    got = b""
    async with asyncio.timeout(60):
        while not got.endswith(b"\n"):
            got += await flow.read()
    assert got == b"hello from libxenvchan\n", got
    await flow.write(b"hello from mirage\n")
    line = await asyncio.wait_for(proxy.stdout.readline(), 60)
    assert line == b"hello from mirage\n", line
    ok("vchan served-libxenvchan")
    await flow.close()
    proxy.stdin.close()
    with contextlib.suppress(ProcessLookupError):
        proxy.terminate()
    await asyncio.wait_for(proxy.wait(), 30)


async def netfront_and_netback(dom: LinuxDomain, xs: AsyncClient) -> None:
    """Both ends of a vif in dom0 (its frontend is dom0's own), through this
    xenstored and the real grant copies and event channels: frames each way."""
    mac = "00:16:3e:00:00:07"
    await create_device(xs, "vif", 0, 0, 7, params={"mac": mac, "handle": "7"})
    await xs.write("/local/domain/0/device/vif/7/mac", mac)
    await xs.write("/local/domain/0/device/vif/7/handle", "7")
    serving = asyncio.create_task(Netback.serve(dom, xs, 0, 7))
    xs_front = await AsyncClient.open(SOCKET)
    front = await asyncio.wait_for(Netfront.connect(dom, xs_front, 7), 60)
    back = await asyncio.wait_for(serving, 60)
    ok("netif connected")
    got_back: list[bytes] = []
    got_front: list[bytes] = []
    tasks = [
        asyncio.create_task(back.listen(got_back.append)),
        asyncio.create_task(front.listen(got_front.append)),
    ]
    count = 100
    sent_f = [back.mac + front.mac + b"\x88\xb5" + bytes([i]) * (46 + i * 14) for i in range(count)]
    sent_b = [front.mac + back.mac + b"\x88\xb5" + bytes([i]) * (1500 - i) for i in range(count)]
    for f in sent_f:
        await front.write(f)
    for f in sent_b:
        await back.write(f)
    async with asyncio.timeout(120):
        while len(got_back) < count or len(got_front) < count:
            await asyncio.sleep(0.05)
    assert got_back == sent_f and got_front == sent_b
    ok(f"netif frames-each-way={count}")
    for t in tasks:
        t.cancel()
    await front.disconnect()
    await back.disconnect()
    await xs_front.close()


DAEMON = (
    "import sys; sys.path.insert(0, '/app'); from mirage.xen.xenstore._daemon import main; main()"
)
SOCKET = "/run/mirage-xenstored.sock"


async def main() -> None:
    assert not os.path.exists("/var/run/xenstored/socket")
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", "-c", DAEMON, "--linux-dom0", "--socket", SOCKET
    )
    async with asyncio.timeout(60):
        while not os.path.exists(SOCKET):
            assert daemon.returncode is None, daemon.returncode
            await asyncio.sleep(0.1)
    ok("mirage-xenstored --linux-dom0")
    await tool("xenstore-write", "/mirage/probe", "hello-from-dom0", "/mirage/n", "1")
    assert await tool("xenstore-read", "/mirage/probe") == "hello-from-dom0\n"
    ok("debian-tools write-read")
    listing = await tool("xenstore-ls", "/mirage")
    assert 'probe = "hello-from-dom0"' in listing and 'n = "1"' in listing, listing
    ok("debian-tools ls")
    await our_client()
    dom = LinuxDomain(0)
    xs = await AsyncClient.open(SOCKET)
    # What Xen's xen-init-dom0 writes at boot (libxenvchan reads its own domid).
    await xs.write("/local/domain/0/domid", "0")
    await xs.write("/local/domain/0/name", "Domain-0")
    await vchan_client_against_libxenvchan(dom, xs)
    await vchan_server_against_libxenvchan(dom, xs)
    await netfront_and_netback(dom, xs)
    await xs.close()
    daemon.terminate()
    assert await asyncio.wait_for(daemon.wait(), 30) == 0
    dom.close()


asyncio.run(main())
