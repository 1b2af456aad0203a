"""vchan flows over the simulated hypervisor and our xenstore daemon."""

from __future__ import annotations

import asyncio
import random
import struct
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.core.testing import FlowTests, async_test, read_exactly, read_to_eof, run
from mirage.core.types import Flow, FlowClosed
from mirage.vchan import Endpoint, Live, Notify, VchanError, VchanFlow
from mirage.vchan import _layout as layout
from mirage.xen.testing import SimMachine
from mirage.xen.xenstore import Perm


async def vchan_pair(
    machine: SimMachine, read_min: int = 1024, write_min: int = 1024, port: str = "test"
) -> tuple[VchanFlow, VchanFlow]:
    server_dom, server_xs = await machine.guest(1)
    client_dom, client_xs = await machine.guest(2)
    listening = asyncio.create_task(
        VchanFlow.listen(server_dom, server_xs, 2, port, read_min=read_min, write_min=write_min)
    )
    client = await VchanFlow.connect(client_dom, client_xs, 1, port)
    return await listening, client


class TestVchanFlow(FlowTests):
    machine: SimMachine

    async def make_flow_pair(self) -> tuple[Flow, Flow]:
        self.machine = await SimMachine().__aenter__()
        return await vchan_pair(self.machine)

    @asynccontextmanager
    async def flow_pair(self) -> AsyncIterator[tuple[Flow, Flow]]:
        a, b = await self.make_flow_pair()
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()
            await self.machine.aclose()


class TestVchanFlowPagedRings(TestVchanFlow):
    """Rings of granted pages (orders 13 and 16) instead of in-page rings."""

    async def make_flow_pair(self) -> tuple[Flow, Flow]:
        self.machine = await SimMachine().__aenter__()
        return await vchan_pair(self.machine, read_min=8192, write_min=65536)

    @async_test
    async def test_rings_are_pages(self) -> None:
        async with self.flow_pair() as (a, _):
            assert isinstance(a, VchanFlow)
            header = layout.pull_header(a.endpoint.page)
            assert (header.left_order, header.right_order) == (13, 16)
            refs = struct.unpack_from("<18I", a.endpoint.page, layout.GRANTS)
            assert list(refs) == list(range(refs[0], refs[0] + 2)) + list(
                range(refs[2], refs[2] + 16)
            )


async def _xenstore_keys() -> None:
    async with SimMachine() as machine:
        server, client = await vchan_pair(machine, port="keys")
        xs = await machine.client()
        path = "/local/domain/1/data/vchan/2/keys"
        assert await xs.read(f"{path}/event-channel") == str(server.port).encode()
        ref = int(await xs.read(f"{path}/ring-ref"))
        assert ref >= 8
        assert await xs.get_perms(f"{path}/ring-ref") == (Perm("n", 1), Perm("r", 2))
        header = layout.pull_header(server.endpoint.page)
        assert (header.cli_live, header.srv_live) == (Live.CONNECTED, Live.CONNECTED)
        assert (header.left_order, header.right_order) == (10, 11)
        await client.close()
        await server.close()
        assert not await xs.exists(path)  # the server removes its keys


def test_xenstore_keys_and_handshake() -> None:
    run(_xenstore_keys())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), total=st.integers(1, 20000))
def test_wraparound_with_random_sizes(seed: int, total: int) -> None:
    """Random write and read sizes through 1 KiB and 2 KiB rings, both ways."""

    async def body() -> None:
        rng = random.Random(seed)
        data = rng.randbytes(total)
        async with SimMachine() as machine:
            server, client = await vchan_pair(machine)

            async def send(flow: VchanFlow) -> None:
                i = 0
                while i < total:
                    n = rng.randint(1, 3000)
                    await flow.write(data[i : i + n])
                    i += n
                await flow.shutdown()

            got = await asyncio.gather(
                send(client), send(server), read_to_eof(server), read_to_eof(client)
            )
            assert got[2] == data and got[3] == data
            await client.close()
            await server.close()

    run(body(), timeout=30)


def new_endpoints(left: int = 64, right: int = 32) -> tuple[Endpoint, Endpoint, bytearray]:
    page = bytearray(4096)
    view = memoryview(page)

    def fetch_and(off: int, mask: int) -> int:
        old = page[off]
        page[off] = old & mask
        return old

    def fetch_or(off: int, bits: int) -> int:
        old = page[off]
        page[off] = old | bits
        return old

    rings = (view[1024 : 1024 + left], view[2048 : 2048 + right])
    server = Endpoint(page=view, left=rings[0], right=rings[1], is_server=True,
                      fetch_and=fetch_and, fetch_or=fetch_or)  # fmt: skip
    client = Endpoint(page=view, left=rings[0], right=rings[1], is_server=False,
                      fetch_and=fetch_and, fetch_or=fetch_or)  # fmt: skip
    return server, client, page


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 100), st.integers(0, 100)), max_size=60),
    st.integers(0, 2**32 - 1),
)
def test_endpoint_against_a_model(ops: list[tuple[bool, int, int]], start: int) -> None:
    """Sans-IO: random writes and reads of random sizes, free-running indices from any
    starting value, against a byte queue; the notify bits say who must be woken."""
    server, client, page = new_endpoints()
    for off in (0, 4, 8, 12):
        struct.pack_into("<I", page, off, start)
    queues: dict[bool, bytearray] = {True: bytearray(), False: bytearray()}
    counter = 0
    for from_client, wsize, rsize in ops:
        writer, reader = (client, server) if from_client else (server, client)
        q = queues[from_client]
        chunk = bytes((counter + i) % 256 for i in range(wsize))
        counter += wsize
        room = writer.buffer_space()
        reader.request_notify(Notify.WRITE)  # the reader wants to hear of data
        n, notify = writer.write(chunk)
        assert n == min(wsize, room)
        assert notify == (n > 0)
        q += chunk[:n]
        got, _ = reader.read(rsize)
        assert got == bytes(q[: len(got)])
        assert len(got) == min(rsize, len(q))
        del q[: len(got)]
        assert reader.data_ready() == len(q)


def test_bad_index_is_a_protocol_error() -> None:
    server, _, page = new_endpoints()
    struct.pack_into("<I", page, layout.LEFT + layout.PROD, 65)  # 65 bytes in a 64-byte ring
    with pytest.raises(VchanError):
        server.read(10)
    assert issubclass(VchanError, FlowClosed)


async def _bad_peer_closes_the_flow() -> None:
    async with SimMachine() as machine:
        server, client = await vchan_pair(machine)
        struct.pack_into("<I", client.endpoint.page, layout.LEFT + layout.PROD, 5000)
        with pytest.raises(VchanError):
            await server.read()
        assert server.endpoint.page[layout.SRV_LIVE] == Live.EXITED
        assert await client.read() == b""  # the client sees the server gone
        with pytest.raises(FlowClosed):
            await client.write(b"x")
        await client.close()
        await server.close()


def test_index_beyond_the_ring_closes_the_flow() -> None:
    run(_bad_peer_closes_the_flow())


CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from mirage.xen.sim import SimHypervisor
    from mirage.xen.xenstore import AsyncClient
    from mirage.vchan import VchanFlow

    async def main():
        dom = SimHypervisor(sys.argv[1]).domain(2)
        xs = await AsyncClient.open(sys.argv[2])
        flow = await VchanFlow.connect(dom, xs, 1, "proc")
        while data := await flow.read():  # echo, then stop writing when asked
            await flow.write(data)
            if data.endswith(b"hang"):
                await asyncio.sleep(3600)
        await flow.close()

    asyncio.run(main())
    """
)


async def _other_process(kill: bool) -> None:
    async with SimMachine() as machine:
        server_dom, server_xs = await machine.domain(1)
        listening = asyncio.create_task(VchanFlow.listen(server_dom, server_xs, 2, "proc"))
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, str(machine.hv.root), machine.socket
        )
        server = await listening
        payload = random.Random(5).randbytes(100_000)
        writer = asyncio.create_task(server.write(payload))
        assert await read_exactly(server, len(payload)) == payload
        await writer
        if not kill:
            await server.shutdown()
            assert await read_to_eof(server) == b""
            assert await child.wait() == 0
        else:
            await server.write(b"hang")
            assert await read_exactly(server, 4) == b"hang"
            child.kill()
            await child.wait()
            machine.hv.destroy(2)  # the toolstack cleans up the dead domain
            assert await asyncio.wait_for(server.read(), 5) == b""
            # Live 0 may be a half close (libxenvchan's values cannot say which): the
            # writer finds out when the ring stays full.
            with pytest.raises(FlowClosed):
                for _ in range(100):
                    await server.write(bytes(1 << 16))
        await server.close()


def test_client_in_another_process() -> None:
    run(_other_process(kill=False))


def test_peer_that_disappears() -> None:
    run(_other_process(kill=True))


async def _devices_share_their_domain() -> None:
    from mirage.vchan.device import VchanClient, VchanServer
    from mirage.xen.devices import XenConsole

    async with SimMachine() as machine:
        args = {"xenstore": machine.socket, "xen_sim": str(machine.hv.root)}
        server_task = asyncio.create_task(VchanServer.connect(client=3, xen_domid=1, **args))
        other_task = asyncio.create_task(
            VchanServer.connect(client=3, port="second", xen_domid=1, **args)
        )
        # Two devices of domain 3 in one process share the domain and its client.
        client = await VchanClient.connect(server=1, xen_domid=3, **args)
        second = await VchanClient.connect(server=1, port="second", xen_domid=3, **args)
        server, other = await server_task, await other_task
        await client.write(b"one")
        await second.write(b"two")
        assert await read_exactly(server, 3) == b"one"
        assert await read_exactly(other, 3) == b"two"
        for device in (client, second, server, other):
            await device.disconnect()
        with pytest.raises(Exception, match="xen-sim"):
            await XenConsole.connect()


def test_devices_share_their_domain() -> None:
    run(_devices_share_their_domain())
