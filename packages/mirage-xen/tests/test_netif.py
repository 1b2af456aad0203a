"""netfront and netback over the simulated hypervisor, and the netif.h codec."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.core.testing import run
from mirage.xen import Grant, netif
from mirage.xen.netback import Netback
from mirage.xen.netfront import Netfront
from mirage.xen.ring import SharedRing
from mirage.xen.sim import SimDomain
from mirage.xen.testing import SimMachine
from mirage.xen.xenbus import XenbusState, create_device, read_state, write_state
from mirage.xen.xenstore import AsyncClient

HEADER = "/usr/include/xen/io/netif.h"
MAC1 = "00:16:3e:00:00:01"
MAC_BYTES = bytes.fromhex("00163e000001")

# -- the codec, pinned to Xen's header -------------------------------------------------

LAYOUT_C = r"""
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/io/netif.h>
#define F(t, f) printf(#t "." #f " %zu %zu\n", offsetof(struct t, f), sizeof(((struct t *)0)->f))
#define S(t) printf(#t " %zu\n", sizeof(struct t))
int main(void) {
    S(netif_tx_request); F(netif_tx_request, gref); F(netif_tx_request, offset);
    F(netif_tx_request, flags); F(netif_tx_request, id); F(netif_tx_request, size);
    S(netif_tx_response); F(netif_tx_response, id); F(netif_tx_response, status);
    S(netif_rx_request); F(netif_rx_request, id); F(netif_rx_request, gref);
    S(netif_rx_response); F(netif_rx_response, id); F(netif_rx_response, offset);
    F(netif_rx_response, flags); F(netif_rx_response, status);
    printf("tx_ring_size %zu\n", (size_t)__CONST_RING_SIZE(netif_tx, 4096));
    printf("rx_ring_size %zu\n", (size_t)__CONST_RING_SIZE(netif_rx, 4096));
    printf("flags %d %d %d %d %d %d\n", NETTXF_more_data, NETTXF_extra_info,
           NETRXF_more_data, NETRXF_data_validated, NETIF_RSP_ERROR, NETIF_RSP_NULL);
    return 0;
}
"""


def c_layout() -> dict[str, tuple[int, ...]]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    if not os.path.exists(HEADER):
        pytest.skip(f"{HEADER} is missing (Debian package libxen-dev)")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "layout.c", Path(tmp) / "layout"
        src.write_text(LAYOUT_C)
        subprocess.run(["gcc", "-o", str(exe), str(src)], check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: tuple(int(x) for x in line.split()[1:]) for line in out.splitlines()}


def test_layout_matches_netif_h() -> None:
    c = c_layout()
    req = netif.push_tx_request(netif.TxRequest(0x11223344, 0x5566, 0x7788, 0x99AA, 0xBBCC))
    assert len(req) == c["netif_tx_request"][0] == 12
    for field, value in (("gref", 0x11223344), ("offset", 0x5566), ("flags", 0x7788)):
        off, size = c[f"netif_tx_request.{field}"]
        assert int.from_bytes(req[off : off + size], "little") == value
    for field, value in (("id", 0x99AA), ("size", 0xBBCC)):
        off, size = c[f"netif_tx_request.{field}"]
        assert int.from_bytes(req[off : off + size], "little") == value
    rsp = netif.push_tx_response(netif.TxResponse(0x1234, -2))
    assert len(rsp) == c["netif_tx_response"][0]
    off, size = c["netif_tx_response.status"]
    assert int.from_bytes(rsp[off : off + size], "little", signed=True) == -2
    rreq = netif.push_rx_request(netif.RxRequest(0x4321, 0xDEADBEEF))
    assert len(rreq) == c["netif_rx_request"][0]
    off, size = c["netif_rx_request.gref"]
    assert int.from_bytes(rreq[off : off + size], "little") == 0xDEADBEEF
    rrsp = netif.push_rx_response(netif.RxResponse(7, 0x0102, 0x0304, 1514))
    assert len(rrsp) == c["netif_rx_response"][0]
    for field, value in (("id", 7), ("offset", 0x0102), ("flags", 0x0304), ("status", 1514)):
        off, size = c[f"netif_rx_response.{field}"]
        assert int.from_bytes(rrsp[off : off + size], "little") == value
    # The slot sizes give the header's ring sizes.
    ring = SharedRing(memoryview(bytearray(4096)), netif.TX_SLOT)
    assert ring.size == c["tx_ring_size"][0] == 256
    assert SharedRing(memoryview(bytearray(4096)), netif.RX_SLOT).size == c["rx_ring_size"][0]
    assert c["flags"] == (
        netif.TxFlags.MORE_DATA,
        netif.TxFlags.EXTRA_INFO,
        netif.RxFlags.MORE_DATA,
        netif.RxFlags.DATA_VALIDATED,
        netif.Status.ERROR,
        netif.Status.NULL,
    )


PULLS = (
    netif.pull_tx_request,
    netif.pull_tx_response,
    netif.pull_rx_request,
    netif.pull_rx_response,
)


@given(st.binary(max_size=20))
def test_decoders_are_total(data: bytes) -> None:
    for pull in PULLS:
        try:
            pull(data)
        except netif.NetifDecodeError:
            pass


u16 = st.integers(0, 0xFFFF)
i16 = st.integers(-0x8000, 0x7FFF)
u32 = st.integers(0, 0xFFFFFFFF)


@given(u32, u16, u16, u16, u16, u16, i16)
def test_round_trips(gref: int, a: int, b: int, c: int, d: int, e: int, s: int) -> None:
    tx = netif.TxRequest(gref, a, b, c, d)
    assert netif.pull_tx_request(netif.push_tx_request(tx)) == tx
    assert netif.pull_tx_response(netif.push_tx_response(netif.TxResponse(e, s))) == (
        netif.TxResponse(e, s)
    )
    assert netif.pull_rx_request(netif.push_rx_request(netif.RxRequest(a, gref))) == (
        netif.RxRequest(a, gref)
    )
    rx = netif.RxResponse(a, b, c, s)
    assert netif.pull_rx_response(netif.push_rx_response(rx)) == rx


# -- frontend and backend in one process -----------------------------------------------


async def start_vif(
    machine: SimMachine, domid: int, backend: tuple[SimDomain, AsyncClient] | None = None
) -> tuple[Netfront, Netback]:
    dom0, xs0 = backend or await machine.domain(0)
    devid = 0
    dom, xs = await machine.guest(domid)
    # What the toolstack writes for a vif: mac and handle on both sides.
    await create_device(xs0, "vif", domid, 0, devid, params={"mac": MAC1, "handle": "0"})
    await xs0.write(f"/local/domain/{domid}/device/vif/{devid}/mac", MAC1)
    await xs0.write(f"/local/domain/{domid}/device/vif/{devid}/handle", "0")
    serving = asyncio.create_task(Netback.serve(dom0, xs0, domid, devid))
    front = await Netfront.connect(dom, xs, devid)
    return front, await serving


def frame(dst: bytes, src: bytes, n: int) -> bytes:
    return dst + src + b"\x88\xb5" + bytes([n & 0xFF]) * (46 + n % 1400)


async def exchange(front: Netfront, back: Netback, count: int) -> None:
    got_back: list[bytes] = []
    got_front: list[bytes] = []
    tasks = [
        asyncio.create_task(back.listen(got_back.append)),
        asyncio.create_task(front.listen(got_front.append)),
    ]
    sent_f = [frame(back.mac, front.mac, i) for i in range(count)]
    sent_b = [frame(front.mac, back.mac, i + 1) for i in range(count)]
    for f in sent_f:
        await front.write(f)  # waits for a free transmit slot
    async with asyncio.timeout(60):
        # The backend queues a bounded number of frames for pages the frontend has
        # not lent yet (a NIC drops beyond that): send in batches it can hold.
        for start in range(0, count, 100):
            for f in sent_b[start : start + 100]:
                await back.write(f)
            while len(got_front) < min(count, start + 100):
                await asyncio.sleep(0.01)
        while len(got_back) < count:
            await asyncio.sleep(0.01)
    assert got_back == sent_f
    assert got_front == sent_b
    for t in tasks:
        t.cancel()


def test_handshake_and_frames() -> None:
    async def body() -> None:
        async with SimMachine() as machine:
            front, back = await start_vif(machine, 1)
            xs = front.xs
            d = front.directory
            assert await read_state(xs, d) == XenbusState.CONNECTED
            assert await back.state() == XenbusState.CONNECTED
            for key in ("tx-ring-ref", "rx-ring-ref", "event-channel"):
                assert int(await xs.read(f"{d}/{key}")) > 0
            assert await xs.read(f"{d}/request-rx-copy") == b"1"
            assert await xs.read(f"{d}/feature-rx-notify") == b"1"
            assert await xs.read(f"{back.directory}/feature-rx-copy") == b"1"
            assert front.mac == bytes.fromhex("00163e000001")
            assert back.name == "vif1.0"
            # More frames than ring slots, both ways.
            await exchange(front, back, 600)
            s = front.stats()
            assert (s.tx_packets, s.rx_packets, s.tx_dropped) == (600, 600, 0)
            await front.write(bytes(2000))  # oversized: dropped, not sent
            assert front.stats().tx_dropped == 1
            await front.disconnect()
            await asyncio.wait_for(back.closed.wait(), 10)
            assert await back.state() == XenbusState.CLOSED
            await back.disconnect()

    run(body(), 120)


# -- two processes, TCP over netfront and netback --------------------------------------


def test_tcp_between_two_processes() -> None:
    """The backend domain runs in its own process with mirage-tcpip on netback; this
    process runs mirage-tcpip on netfront and sends data, which comes back hashed."""
    pytest.importorskip("mirage.tcpip.stack", reason="needs mirage-tcpip")
    from mirage.tcpip.stack import DirectStack

    payload = os.urandom(1_000_000)

    async def body() -> None:
        async with SimMachine() as machine:
            xs0 = await machine.client()
            await create_device(xs0, "vif", 1, 0, 0, params={"mac": "fe:ff:ff:ff:ff:ff"})
            await xs0.write("/local/domain/1/device/vif/0/mac", MAC1)
            peer = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).with_name("netback_peer.py")),
                str(machine.hv.root),
                machine.socket,
                "1",
                "8080",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert peer.stdin is not None and peer.stdout is not None
            try:
                dom1, xs1 = await machine.guest(1)
                front = await Netfront.connect(dom1, xs1)
                async with asyncio.timeout(60):
                    assert (await peer.stdout.readline()).strip() == b"ready"
                stack = await DirectStack.connect(network=front, ipv4="10.0.0.2/24")
                flow = await stack.tcp.connect("10.0.0.1", 8080)
                await flow.write(payload)
                await flow.shutdown()
                answer = b""
                async with asyncio.timeout(60):
                    while chunk := await flow.read():
                        answer += chunk
                assert answer == hashlib.sha256(payload).digest()
                await flow.close()
                await stack.disconnect()
                assert front.stats().tx_packets > 100
                await front.disconnect()
            finally:
                peer.stdin.close()
                try:
                    async with asyncio.timeout(30):
                        await peer.wait()
                except TimeoutError:
                    peer.kill()
                    await peer.wait()
            assert peer.returncode == 0

    run(body(), 180)


# -- a frontend that breaks the protocol -----------------------------------------------


async def raw_frontend(
    machine: SimMachine, domid: int, backend: tuple[SimDomain, AsyncClient]
) -> tuple[SharedRing, int, int, Netback]:
    """A hand-made frontend of ``domid`` that completes the handshake: its transmit
    ring, a granted data page's reference, its port, and the backend serving it."""
    tx, _rx, data, port, back = await raw_frontend_rings(machine, domid, backend)
    return tx, data.refs[0], port, back


async def raw_frontend_rings(
    machine: SimMachine, domid: int, backend: tuple[SimDomain, AsyncClient]
) -> tuple[SharedRing, SharedRing, Grant, int, Netback]:
    """As :func:`raw_frontend`, with the receive ring and the data page's grant."""
    dom0, xs0 = backend
    dom, xs = await machine.guest(domid)
    paths = await create_device(xs0, "vif", domid, 0, 0)
    serving = asyncio.create_task(Netback.serve(dom0, xs0, domid, 0))
    tx_grant = dom.gnttab.share(0, 1)
    rx_grant = dom.gnttab.share(0, 1)
    data = dom.gnttab.share(0, 1)
    tx = SharedRing(tx_grant.memory, netif.TX_SLOT)
    tx.init()
    rx = SharedRing(rx_grant.memory, netif.RX_SLOT)
    rx.init()
    port = dom.evtchn.bind_unbound_port(0)
    for key, value in (
        ("tx-ring-ref", tx_grant.refs[0]),
        ("rx-ring-ref", rx_grant.refs[0]),
        ("event-channel", port),
        ("request-rx-copy", 1),
        ("feature-rx-notify", 1),
    ):
        await xs.write(f"{paths.frontend}/{key}", str(value))
    await write_state(xs, paths.frontend, XenbusState.CONNECTED)
    back = await serving
    assert await back.state() == XenbusState.CONNECTED
    return tx, rx, data, port, back


@pytest.mark.parametrize(
    "bad",
    [
        "index beyond the ring",
        "oversized frame",
        "more data",
        "slots beyond the frame",
        "too many slots",
        "extra info",
    ],
)
def test_bad_frontend_closes_only_its_device(bad: str) -> None:
    async def body() -> None:
        async with SimMachine() as machine:
            dom0 = await machine.domain(0)
            good_front, good_back = await start_vif(machine, 2, dom0)
            tx, data_ref, port, back = await raw_frontend(machine, 3, dom0)
            evtchn = machine._domains[-1].evtchn
            ok = netif.TxRequest(data_ref, 0, 0, 0, 60)
            tx.write_slot(0, netif.push_tx_request(ok))
            tx.set(0, 1)  # req_prod
            evtchn.notify(port)
            async with asyncio.timeout(10):
                while tx.get(8) != 1:  # rsp_prod: the good request was answered
                    await asyncio.sleep(0.01)
            if bad == "index beyond the ring":
                tx.set(0, 1 + tx.size + 1)
            else:
                req = {
                    "oversized frame": netif.TxRequest(data_ref, 0, 0, 1, 3000),
                    "more data": netif.TxRequest(data_ref, 0, netif.TxFlags.MORE_DATA, 1, 60),
                    "slots beyond the frame": netif.TxRequest(
                        data_ref, 0, netif.TxFlags.MORE_DATA, 1, 60
                    ),
                    "too many slots": netif.TxRequest(
                        data_ref, 0, netif.TxFlags.MORE_DATA, 1, 1000
                    ),
                    "extra info": netif.TxRequest(data_ref, 0, netif.TxFlags.EXTRA_INFO, 1, 60),
                }[bad]
                tx.write_slot(1, netif.push_tx_request(req))
                published = 2
                if bad == "slots beyond the frame":  # 61 bytes follow a 60-byte frame
                    tx.write_slot(2, netif.push_tx_request(netif.TxRequest(data_ref, 0, 0, 2, 61)))
                    published = 3
                if bad == "too many slots":  # 19 slots of 10 bytes
                    for i in range(2, 20):
                        more = netif.TxFlags.MORE_DATA if i < 19 else 0
                        tx.write_slot(
                            i, netif.push_tx_request(netif.TxRequest(data_ref, 0, more, i, 10))
                        )
                    published = 20
                tx.set(0, published)
            evtchn.notify(port)
            await asyncio.wait_for(back.closed.wait(), 10)
            assert await back.state() == XenbusState.CLOSED
            assert back.error is not None
            # The other device of the same backend carries on.
            assert await good_back.state() == XenbusState.CONNECTED
            await exchange(good_front, good_back, 20)
            await back.disconnect()
            await good_front.disconnect()
            await good_back.disconnect()

    run(body(), 60)


def test_bad_grants_cost_only_their_packets() -> None:
    """As Linux's netback: a transmit request whose grant cannot be copied from is
    answered NETIF_RSP_ERROR, a receive page whose grant cannot be copied into gets
    an error response (its frame is lost); the device stays Connected and the next
    requests are served."""

    async def body() -> None:
        async with SimMachine() as machine:
            dom0 = await machine.domain(0)
            tx, rx, data, port, back = await raw_frontend_rings(machine, 3, dom0)
            evtchn = machine._domains[-1].evtchn
            got: list[bytes] = []
            listening = asyncio.create_task(back.listen(got.append))
            sent = frame(back.mac, MAC_BYTES, 7)[:60]
            data.memory[0:60] = sent
            for i, req in enumerate(
                [netif.TxRequest(999, 0, 0, 0, 60), netif.TxRequest(data.refs[0], 0, 0, 1, 60)]
            ):
                tx.write_slot(i, netif.push_tx_request(req))
            tx.set(0, 2)  # req_prod
            evtchn.notify(port)
            async with asyncio.timeout(10):
                while tx.get(8) != 2 or not got:  # rsp_prod: both answered
                    await asyncio.sleep(0.01)
            answers = [netif.pull_tx_response(bytes(tx.slot(i))) for i in range(2)]
            assert answers == [
                netif.TxResponse(0, netif.Status.ERROR),
                netif.TxResponse(1, netif.Status.OKAY),
            ]
            assert got == [sent]
            assert back.stats().rx_dropped == 1
            # Receive: the first page lent has a bad grant, the second a good one.
            for i, ref in enumerate([999, data.refs[0]]):
                rx.write_slot(i, netif.push_rx_request(netif.RxRequest(i, ref)))
            rx.set(0, 2)
            evtchn.notify(port)
            out = [frame(MAC_BYTES, back.mac, n) for n in (1, 2)]
            for f in out:
                await back.write(f)
            async with asyncio.timeout(10):
                while rx.get(8) != 2:
                    await asyncio.sleep(0.01)
            answers_rx = [netif.pull_rx_response(bytes(rx.slot(i))) for i in range(2)]
            assert answers_rx == [
                netif.RxResponse(0, 0, 0, netif.Status.ERROR),
                netif.RxResponse(1, 0, 0, len(out[1])),
            ]
            assert bytes(data.memory[0 : len(out[1])]) == out[1]
            stats = back.stats()
            assert (stats.tx_dropped, stats.tx_packets) == (1, 1)
            assert await back.state() == XenbusState.CONNECTED and back.error is None
            listening.cancel()
            await back.disconnect()

    run(body(), 60)


def test_scatter_gather_chains() -> None:
    """feature-sg: a frame sent as a MORE_DATA chain arrives whole, each slot
    answered; a bad grant anywhere in a chain answers all its slots with an error."""

    async def body() -> None:
        async with SimMachine() as machine:
            dom0 = await machine.domain(0)
            tx, _rx, data, port, back = await raw_frontend_rings(machine, 3, dom0)
            assert await back.xs.read(f"{back.directory}/feature-sg") == b"1"
            evtchn = machine._domains[-1].evtchn
            got: list[bytes] = []
            listening = asyncio.create_task(back.listen(got.append))
            sent = frame(back.mac, MAC_BYTES, 150)[:200]
            # 100 bytes at the end of the page, then 60 and 40 elsewhere in it.
            pieces = [(4096 - 100, sent[:100]), (1000, sent[100:160]), (2000, sent[160:])]
            for off, piece in pieces:
                data.memory[off : off + len(piece)] = piece
            more = netif.TxFlags.MORE_DATA
            ref = data.refs[0]
            good = [
                netif.TxRequest(ref, 4096 - 100, more, 0, 200),
                netif.TxRequest(ref, 1000, more, 1, 60),
                netif.TxRequest(ref, 2000, 0, 2, 40),
            ]
            bad = [
                netif.TxRequest(ref, 0, more, 3, 100),
                netif.TxRequest(999, 0, 0, 4, 40),
            ]
            for i, req in enumerate(good + bad):
                tx.write_slot(i, netif.push_tx_request(req))
            tx.set(0, 5)
            evtchn.notify(port)
            async with asyncio.timeout(10):
                while tx.get(8) != 5 or not got:
                    await asyncio.sleep(0.01)
            answers = [netif.pull_tx_response(bytes(tx.slot(i))) for i in range(5)]
            statuses = [netif.Status.OKAY] * 3 + [netif.Status.ERROR] * 2
            assert answers == [netif.TxResponse(i, st) for i, st in enumerate(statuses)]
            assert got == [sent]
            assert back.stats().rx_dropped == 1
            assert await back.state() == XenbusState.CONNECTED
            listening.cancel()
            await back.disconnect()

    run(body(), 60)


def test_frontend_follows_a_closing_backend() -> None:
    async def body() -> None:
        async with SimMachine() as machine:
            front, back = await start_vif(machine, 1)
            listening = asyncio.create_task(front.listen(lambda f: None))
            await back.disconnect()
            await asyncio.wait_for(listening, 10)  # listen returns once closed
            assert front.closed
            assert await read_state(front.xs, front.directory) == XenbusState.CLOSED
            await front.write(frame(back.mac, front.mac, 1))
            assert front.stats().tx_dropped == 1
            await front.disconnect()

    run(body(), 60)


def test_backend_refuses_a_frontend_without_rx_copy() -> None:
    async def body() -> None:
        async with SimMachine() as machine:
            dom0, xs0 = await machine.domain(0)
            dom, xs = await machine.guest(4)
            paths = await create_device(xs0, "vif", 4, 0, 0)
            serving = asyncio.create_task(Netback.serve(dom0, xs0, 4, 0))
            ring = dom.gnttab.share(0, 2)
            port = dom.evtchn.bind_unbound_port(0)
            for key, value in (
                ("tx-ring-ref", ring.refs[0]),
                ("rx-ring-ref", ring.refs[1]),
                ("event-channel", port),
            ):
                await xs.write(f"{paths.frontend}/{key}", str(value))
            await write_state(xs, paths.frontend, XenbusState.CONNECTED)
            with pytest.raises(Exception, match="rx-copy"):
                await serving
            assert await read_state(xs0, paths.backend) == XenbusState.CLOSED

    run(body(), 60)


def test_device_factory() -> None:
    from mirage.core.types import Network
    from mirage.xen.devices import XenNetwork

    async def body() -> None:
        async with SimMachine() as machine:
            dom0, xs0 = await machine.domain(0)
            await create_device(xs0, "vif", 5, 0, 0)
            await xs0.write("/local/domain/5/device/vif/0/mac", MAC1)
            serving = asyncio.create_task(Netback.serve(dom0, xs0, 5, 0))
            dev = await XenNetwork.connect(
                xenstore=machine.socket, xen_sim=str(machine.hv.root), xen_domid=5
            )
            back = await serving
            assert isinstance(dev, Network)
            assert dev.mac == bytes.fromhex("00163e000001") and dev.mtu == 1500
            got: list[bytes] = []
            listening = asyncio.create_task(back.listen(got.append))
            sent = frame(back.mac, dev.mac, 3)
            await dev.write(sent)
            async with asyncio.timeout(10):
                while not got:
                    await asyncio.sleep(0.01)
            assert got == [sent] and dev.stats().tx_packets == 1
            await dev.disconnect()
            await asyncio.wait_for(listening, 10)
            await back.disconnect()

    run(body(), 60)


def test_frontend_closes_on_a_broken_ring() -> None:
    """A backend that publishes more responses than requests were made: the
    frontend closes its device (Closed in xenstore) and listen returns."""

    async def body() -> None:
        async with SimMachine() as machine:
            front, back = await start_vif(machine, 1)
            listening = asyncio.create_task(front.listen(lambda f: None))
            rx_ring = SharedRing(front._grants[1].memory, netif.RX_SLOT)
            rx_ring.set(8, rx_ring.get(8) + 5000)  # rsp_prod far beyond what was asked
            assert back._wakeup is not None
            back._wakeup.notify()
            await asyncio.wait_for(listening, 10)
            assert front.closed
            assert await read_state(front.xs, front.directory) == XenbusState.CLOSED
            await front.disconnect()
            await asyncio.wait_for(back.closed.wait(), 10)  # the backend follows
            await back.disconnect()

    run(body(), 60)


@settings(max_examples=12, deadline=None)
@given(
    st.lists(st.binary(min_size=netif.TX_SLOT, max_size=netif.TX_SLOT), min_size=1, max_size=6),
    st.integers(0, 300),
)
def test_arbitrary_transmit_requests(slots: list[bytes], published: int) -> None:
    """Whatever a frontend writes into its transmit slots and index, the backend
    answers or closes the device; nothing escapes its task."""

    async def body() -> None:
        async with SimMachine() as machine:
            dom0 = await machine.domain(0)
            tx, _, port, back = await raw_frontend(machine, 3, dom0)
            for i, raw in enumerate(slots):
                tx.write_slot(i, raw)
            tx.set(0, published)
            machine._domains[-1].evtchn.notify(port)
            assert back._task is not None
            for _ in range(100):
                if back.closed.is_set() or tx.get(8) == published:  # all answered
                    break
                await asyncio.sleep(0.01)
            if back._task.done():
                assert back._task.exception() is None
            state = await back.state()
            assert state in (XenbusState.CONNECTED, XenbusState.CLOSED)
            await back.disconnect()

    run(body(), 60)
