"""Split drivers over the simulated hypervisor: PV console and block devices."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from mirage.core.testing import BlockTests, ConsoleTests, async_test, run
from mirage.core.types import Block, BlockError, Console
from mirage.xen import Grant
from mirage.xen.blkback import Blkback
from mirage.xen.blkfront import Blkfront
from mirage.xen.blkif import Op, Request, Segment, push_request
from mirage.xen.console import ConsoleBackend, ConsoleFrontend
from mirage.xen.devices import XenBlock
from mirage.xen.ring import SharedRing
from mirage.xen.testing import SimMachine
from mirage.xen.xenbus import XenbusState, create_device, read_state, write_state

# -- console -------------------------------------------------------------------------


class TestXenConsole(ConsoleTests):
    machine: SimMachine
    backend: ConsoleBackend

    async def make_console(self) -> Console:
        self.machine = machine = await SimMachine().__aenter__()
        dom0, xs0 = await machine.domain(0)
        dom1, xs1 = await machine.guest(1)
        await create_device(xs0, "console", 1, 0, 0)
        serving = asyncio.create_task(ConsoleBackend.serve(dom0, xs0, 1))
        front = await ConsoleFrontend.connect(dom1, xs1)
        self.backend = await serving
        return front

    async def console_output(self, console: Console) -> bytes:
        self.backend.collect()
        return bytes(self.backend.output)

    @asynccontextmanager
    async def console(self) -> AsyncIterator[Console]:
        device = await self.make_console()
        try:
            yield device
        finally:
            await device.close()
            await self.backend.close()
            await self.machine.aclose()

    @async_test
    async def test_handshake_and_input(self) -> None:
        async with self.console() as con:
            assert isinstance(con, ConsoleFrontend)
            assert await read_state(con.xs, con.directory) == XenbusState.CONNECTED
            assert await self.backend.state() == XenbusState.CONNECTED
            await self.backend.write(b"typed\n")
            assert await con.read() == b"typed\n"
            big = bytes(range(256)) * 40  # more than the 2 KiB output ring
            writer = asyncio.create_task(con.write(big))
            got = bytearray()
            while len(got) < len(big):
                got += await self.backend.read()
            await writer
            assert bytes(got) == big
            await con.shutdown()
            with pytest.raises(Exception, match="shut down"):
                await con.write(b"x")

    @async_test
    async def test_broken_ring_closes_the_console(self) -> None:
        async with self.console() as con:
            assert isinstance(con, ConsoleFrontend)
            memory = con._grant.memory
            memory[3076:3080] = (5000).to_bytes(4, "little")  # in_prod beyond the ring
            assert await con.read() == b""
            assert await read_state(con.xs, con.directory) == XenbusState.CLOSED


# -- block ---------------------------------------------------------------------------


async def start_disk(
    machine: SimMachine, sectors: int, read_only: bool = False
) -> tuple[Blkfront, Blkback]:
    disk = machine.root / f"disk{sectors}"
    with open(disk, "wb") as f:
        f.truncate(sectors * 512)
    dom0, xs0 = await machine.domain(0)
    dom1, xs1 = await machine.guest(1)
    await create_device(xs0, "vbd", 1, 0, 51712)
    serving = asyncio.create_task(Blkback.serve(dom0, xs0, 1, 51712, disk, read_only=read_only))
    front = await Blkfront.connect(dom1, xs1)
    return front, await serving


class TestBlkfront(BlockTests):
    machine: SimMachine
    backend: Blkback

    async def make_block(self, sectors: int, sector_size: int, read_write: bool = True) -> Block:
        assert sector_size == 512
        self.machine = await SimMachine().__aenter__()
        front, self.backend = await start_disk(self.machine, sectors, not read_write)
        return front

    @asynccontextmanager
    async def block(self, read_write: bool = True) -> AsyncIterator[Block]:
        device = await self.make_block(16, self.sector_size, read_write)
        try:
            yield device
        finally:
            assert isinstance(device, Blkfront)
            await device.disconnect()
            await self.backend.close()
            await self.machine.aclose()


async def _large_and_concurrent() -> None:
    async with SimMachine() as machine:
        front, back = await start_disk(machine, 4096)
        data = os.urandom(300 * 512)  # more than one request's 88 sectors
        await front.write(100, data)
        assert await front.read(100, 300) == data
        with open(machine.root / "disk4096", "rb") as f:
            f.seek(100 * 512)
            assert f.read(len(data)) == data  # the file behind blkback
        # More requests than ring slots at once.
        chunks = [bytes([i]) * 4096 for i in range(64)]
        await asyncio.gather(*(front.write(i * 8, c) for i, c in enumerate(chunks)))
        got = await asyncio.gather(*(front.read(i * 8, 8) for i in range(64)))
        assert got == chunks
        await front.flush()
        assert back.requests > 64
        await front.disconnect()
        await asyncio.sleep(0)
        for _ in range(100):
            if await back.state() == XenbusState.CLOSED:
                break
            await asyncio.sleep(0.01)
        assert await back.state() == XenbusState.CLOSED
        await back.close()


def test_large_and_concurrent_io() -> None:
    run(_large_and_concurrent())


async def _bad_frontend() -> None:
    """A frontend that answers the handshake, then publishes a request index beyond
    the ring and bad requests: the backend answers errors, then closes the device."""
    async with SimMachine() as machine:
        disk = machine.root / "disk"
        disk.write_bytes(bytes(8 * 512))
        dom0, xs0 = await machine.domain(0)
        dom1, xs1 = await machine.guest(1)
        paths = await create_device(xs0, "vbd", 1, 0, 7)
        serving = asyncio.create_task(Blkback.serve(dom0, xs0, 1, 7, disk))
        ring_grant: Grant = dom1.gnttab.share(0, 1)
        shared = SharedRing(ring_grant.memory, 112)
        shared.init()
        port = dom1.evtchn.bind_unbound_port(0)
        await xs1.write(f"{paths.frontend}/ring-ref", str(ring_grant.refs[0]))
        await xs1.write(f"{paths.frontend}/event-channel", str(port))
        await write_state(xs1, paths.frontend, XenbusState.INITIALISED)
        back = await serving
        # Bad requests first: answered with errors.
        bad = bytearray(push_request(Request(Op.READ, 0, 77, 0, (Segment(999, 0, 7),))))
        shared.write_slot(0, bytes(bad))
        bad[1] = 12  # too many segments: undecodable
        shared.write_slot(1, bytes(bad))
        shared.write_slot(2, push_request(Request(Op.WRITE, 0, 78, 7, (Segment(1, 0, 7),) * 2)))
        shared.write_slot(3, push_request(Request(Op.DISCARD, 0, 79, 0)))
        shared.set(0, 4)
        dom1.evtchn.notify(port)
        for _ in range(200):
            if shared.get(8) == 4:
                break
            await asyncio.sleep(0.01)
        statuses = [int.from_bytes(shared.slot(i)[10:12], "little", signed=True) for i in range(4)]
        assert statuses == [-1, -1, -1, -2]
        assert await back.state() == XenbusState.CONNECTED
        shared.set(0, 4 + shared.size + 1)
        dom1.evtchn.notify(port)
        await asyncio.wait_for(back.closed.wait(), 10)
        assert await back.state() == XenbusState.CLOSED
        await back.close()


def test_backend_closes_on_a_broken_ring() -> None:
    run(_bad_frontend())


async def _device_wrapper() -> None:
    async with SimMachine() as machine:
        disk = machine.root / "disk"
        disk.write_bytes(bytes(16 * 512))
        dom0, xs0 = await machine.domain(0)
        await create_device(xs0, "vbd", 3, 0, 51712)
        serving = asyncio.create_task(Blkback.serve(dom0, xs0, 3, 51712, disk))
        dev = await XenBlock.connect(
            xenstore=machine.socket, xen_sim=str(machine.hv.root), xen_domid=3
        )
        back = await serving
        await dev.write(1, b"z" * 512)
        assert await dev.read(1, 1) == b"z" * 512
        assert (await dev.info()).size_sectors == 16
        await dev.disconnect()
        await back.close()
    with pytest.raises(Exception, match="xen-sim"):
        await XenBlock.connect()


def test_device_factory() -> None:
    run(_device_wrapper())


def test_read_only_disk_refuses_writes() -> None:
    async def body() -> None:
        async with SimMachine() as machine:
            front, back = await start_disk(machine, 8, read_only=True)
            assert not (await front.info()).read_write
            # Even a request the frontend should not send is refused by the backend.
            with pytest.raises(BlockError):
                await front._request(Op.WRITE, 0, 8, bytes(4096))
            await front.disconnect()
            await back.close()

    run(body())
