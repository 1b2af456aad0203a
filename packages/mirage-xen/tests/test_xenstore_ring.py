"""Domains reach xenstored over their shared ring page, as themselves."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest

from mirage.core.testing import run
from mirage.xen.sim import SimHypervisor
from mirage.xen.testing import XENSTORE_DOMID, SimMachine
from mirage.xen.xenstore import AsyncClient, AsyncTransaction, Op, Perm, XsError, share_ring
from mirage.xen.xenstore._ring import ERROR, REQ, REQ_PROD


async def _guest() -> None:
    async with SimMachine() as machine:
        toolstack = await machine.client()
        events = await toolstack.watch("@introduceDomain")
        await events.get()  # the initial event
        _, guest = await machine.guest(5)
        assert (await events.get()).path == "@introduceDomain"
        assert await toolstack.is_domain_introduced(5)
        # Relative paths are under the domain's home, which it owns.
        await guest.write("data/x", "1")
        assert await toolstack.read("/local/domain/5/data/x") == b"1"
        assert await toolstack.get_perms("/local/domain/5/data/x") == (Perm("n", 5),)
        # It is domain 5: no access to what others did not share with it.
        await toolstack.write("/local/domain/0/secret", "s")
        with pytest.raises(XsError) as info:
            await guest.read("/local/domain/0/secret")
        assert info.value.name == "EACCES"
        with pytest.raises(XsError):
            await guest.introduce(9, 1, 1)
        # Watches and transactions over the ring.
        queue = await guest.watch("data")
        assert (await queue.get()).path == "data"
        await toolstack.write("/local/domain/5/data/y", "2")
        assert (await queue.get()).path == "data/y"

        async def bump(t: AsyncTransaction) -> None:
            await t.write("data/n", "1")

        await guest.transaction(bump)
        assert await toolstack.read("/local/domain/5/data/n") == b"1"
        # More than one ring's worth in one reply (the ring is 1 KiB).
        await toolstack.write("/local/domain/5/data/big", "v" * 3000)
        await toolstack.set_perms("/local/domain/5/data/big", (Perm("n", 5),))
        assert await guest.read("data/big") == b"v" * 3000
        # Release: the domain's connection goes.
        released = await toolstack.watch("@releaseDomain")
        await released.get()
        await toolstack.release(5)
        assert (await released.get()).path == "@releaseDomain"
        with pytest.raises((ConnectionError, asyncio.TimeoutError)):
            await asyncio.wait_for(guest.read("data/x"), 0.5)


def test_guest_over_its_ring() -> None:
    run(_guest())


async def _broken_ring() -> None:
    async with SimMachine() as machine:
        toolstack = await machine.client()
        domain = machine.hv.domain(6)
        grant, port = share_ring(domain, XENSTORE_DOMID)
        await toolstack.introduce(6, grant.refs[0], port)
        header = struct.pack("<IIII", Op.READ, 1, 0, 2) + b"/\0"
        grant.memory[REQ : REQ + len(header)] = header
        struct.pack_into("<I", grant.memory, REQ_PROD, 5000)  # beyond the 1 KiB ring
        domain.evtchn.notify(port)
        for _ in range(200):
            if struct.unpack_from("<I", grant.memory, ERROR)[0]:
                break
            await asyncio.sleep(0.01)
        assert struct.unpack_from("<I", grant.memory, ERROR)[0] == 2  # XENSTORE_ERROR_RINGIDX
        assert await toolstack.is_domain_introduced(0)  # the daemon carries on
        domain.close()


def test_broken_ring_index() -> None:
    run(_broken_ring())


async def _bad_introduction() -> None:
    async with SimMachine() as machine:
        toolstack = await machine.client()
        await toolstack.introduce(7, 12345, 1)  # no such page: logged, not fatal
        assert await toolstack.is_domain_introduced(7)
        assert await toolstack.read("/") == b""


def test_introduction_of_an_unreachable_ring() -> None:
    run(_bad_introduction())


async def _daemon_script_serves_rings(daemon: list[str]) -> None:
    root = Path(tempfile.mkdtemp(prefix="mxr"))
    hv = SimHypervisor(root / "hv")
    sock = str(root / "xs")
    proc = await asyncio.create_subprocess_exec(
        *daemon, "--socket", sock, "--xen-sim", str(hv.root), "--xen-domid", "0"
    )
    try:
        while not os.path.exists(sock):
            await asyncio.sleep(0.01)
        toolstack = await AsyncClient.open(sock)
        guest = hv.domain(8)
        grant, port = share_ring(guest, 0)
        await toolstack.introduce(8, grant.refs[0], port)
        xs = await AsyncClient.open_ring(guest, grant, port)
        with pytest.raises(XsError):  # domain 8 may not write the root
            await xs.write("/not-mine", "x")
        await toolstack.mkdir("/local/domain/8")
        await toolstack.set_perms("/local/domain/8", (Perm("n", 8),))
        await xs.write("name", "guest")
        assert await toolstack.read("/local/domain/8/name") == b"guest"
        await xs.close()
        await toolstack.close()
        guest.close()
    finally:
        proc.terminate()
        assert await proc.wait() == 0
        shutil.rmtree(root, ignore_errors=True)


def test_daemon_script_serves_domain_rings(daemon: list[str]) -> None:
    run(_daemon_script_serves_rings(daemon))


async def _reconnect() -> None:
    from mirage.xen.xenstore._ring import (
        CONNECTION,
        REQ_CONS,
        RSP_PROD,
        SERVER_FEATURES,
        RingTransport,
    )

    def field(memory: memoryview, off: int) -> int:
        return int(struct.unpack_from("<I", memory, off)[0])

    async def until(check: object) -> None:
        for _ in range(500):
            if check():  # type: ignore[operator]
                return
            await asyncio.sleep(0.01)
        raise AssertionError("timed out")

    async with SimMachine() as machine:
        toolstack = await machine.client()
        domain = machine.hv.domain(8)
        grant, port = share_ring(domain, XENSTORE_DOMID)
        memory = grant.memory
        # A page the toolstack marked RECONNECT (as for dom0less guests): xenstored
        # connects it at introduction, advertising its features.
        struct.pack_into("<I", memory, CONNECTION, 1)
        await toolstack.mkdir("/local/domain/8")
        await toolstack.set_perms("/local/domain/8", (Perm("n", 8),))
        await toolstack.introduce(8, grant.refs[0], port)
        await until(lambda: field(memory, CONNECTION) == 0)
        assert field(memory, SERVER_FEATURES) == 3  # RECONNECTION | ERROR
        transport = RingTransport(domain, grant, port)
        guest = AsyncClient(transport, transport)
        await guest.write("x", "1")
        queue = await guest.watch("x")
        assert (await queue.get()).path == "x"
        server = machine.daemon.server

        def watches_of_8() -> int:
            return sum(len(c.watches) for c in server._conns.values() if c.domid == 8)

        assert watches_of_8() == 1
        await transport.reconnect()
        # The queues were emptied and the connection's watches dropped.
        assert field(memory, REQ_CONS) == field(memory, RSP_PROD) == 0
        assert watches_of_8() == 0
        assert await guest.read("x") == b"1"  # the ring works on
        await guest.close()
        domain.close()


def test_ring_reconnection() -> None:
    run(_reconnect())


async def _oversized_on_the_ring() -> None:
    async with SimMachine() as machine:
        toolstack = await machine.client()
        domain = machine.hv.domain(9)
        grant, port = share_ring(domain, XENSTORE_DOMID)
        await toolstack.introduce(9, grant.refs[0], port)
        header = struct.pack("<IIII", Op.READ, 1, 0, 5000)  # more than XENSTORE_PAYLOAD_MAX
        grant.memory[REQ : REQ + len(header)] = header
        struct.pack_into("<I", grant.memory, REQ_PROD, len(header))
        domain.evtchn.notify(port)
        for _ in range(500):
            if struct.unpack_from("<I", grant.memory, ERROR)[0]:
                break
            await asyncio.sleep(0.01)
        assert struct.unpack_from("<I", grant.memory, ERROR)[0] == 3  # XENSTORE_ERROR_PROTO
        assert await toolstack.is_domain_introduced(0)  # the daemon carries on
        domain.close()


def test_oversized_packet_on_the_ring() -> None:
    run(_oversized_on_the_ring())


async def _client_reconnects() -> None:
    async with SimMachine() as machine:
        toolstack = await machine.client()
        domain = machine.hv.domain(9)
        grant, port = share_ring(domain, XENSTORE_DOMID)
        await toolstack.mkdir("/local/domain/9")
        await toolstack.set_perms("/local/domain/9", (Perm("n", 9),))
        await toolstack.introduce(9, grant.refs[0], port)
        guest = await AsyncClient.open_ring(domain, grant, port)
        await guest.write("n", "0")
        queue = await guest.watch("n", "tok")
        assert (await asyncio.wait_for(queue.get(), 10)).path == "n"
        server = machine.daemon.server

        def watches_of_9() -> int:
            return sum(len(c.watches) for c in server._conns.values() if c.domid == 9)

        # A transaction whose connection is reset while it runs starts again.
        inside = asyncio.Event()
        go_on = asyncio.Event()
        runs = 0

        async def bump(tx: AsyncTransaction) -> int:
            nonlocal runs
            runs += 1
            value = int(await tx.read("n"))
            inside.set()
            await go_on.wait()
            await tx.write("n", str(value + 1))
            return value + 1

        transaction = asyncio.create_task(guest.transaction(bump))
        await asyncio.wait_for(inside.wait(), 10)
        await guest.reconnect()
        go_on.set()
        assert await asyncio.wait_for(transaction, 10) == 1
        assert runs == 2
        # The watch is back, with a fresh initial event, and fires.
        assert watches_of_9() == 1
        events = [await asyncio.wait_for(queue.get(), 10) for _ in range(2)]
        assert [e.path for e in events] == ["n", "n"]  # the initial one, the commit's
        await toolstack.write("/local/domain/9/n", "5")
        assert (await asyncio.wait_for(queue.get(), 10)).token == "tok"
        assert await guest.read("n") == b"5"
        await guest.close()
        domain.close()


def test_the_client_reconnects_by_itself() -> None:
    run(_client_reconnects())
