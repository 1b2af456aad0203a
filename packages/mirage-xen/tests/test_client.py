"""Our clients against our daemon, in process and as the console script."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import pytest

from mirage.core.testing import run
from mirage.xen.testing import SimMachine
from mirage.xen.xenstore import (
    AsyncClient,
    AsyncTransaction,
    Client,
    Op,
    Perm,
    Transaction,
    WatchEvent,
    XsError,
)


def test_sync_client(xenstored: str) -> None:
    with Client(xenstored) as c:
        c.write("/s/a", "1")
        c.write("/s/b", b"\x00\xff")
        assert c.read("/s/a") == b"1"
        assert c.read("/s/b") == b"\x00\xff"
        assert c.directory("/s") == ["a", "b"]
        assert c.exists("/s/a") and not c.exists("/s/zz")
        c.set_perms("/s/a", (Perm("n", 0), Perm("r", 3)))
        assert c.get_perms("/s/a") == (Perm("n", 0), Perm("r", 3))
        c.mkdir("/s/d")
        c.rm("/s/b")
        assert c.directory("/s") == ["a", "d"]
        with pytest.raises(XsError) as info:
            c.read("/s/b")
        assert info.value.name == "ENOENT"
        assert c.get_domain_path(4) == "/local/domain/4"
        assert c.is_domain_introduced(0)
        c.introduce(4, 100, 3)
        assert c.is_domain_introduced(4)
        c.release(4)
        assert not c.is_domain_introduced(4)


def test_sync_watch(xenstored: str) -> None:
    with Client(xenstored) as a, Client(xenstored) as b:
        a.watch("/w", "tok")
        assert a.next_event(5) == WatchEvent("/w", "tok")
        b.write("/w/x", "1")
        a.write("/unrelated", "1")  # a reply may arrive after the event
        assert a.next_event(5) == WatchEvent("/w/x", "tok")
        a.unwatch("/w", "tok")
        b.write("/w/y", "1")
        with pytest.raises(TimeoutError):
            a.next_event(0.2)


def test_sync_transaction_retries(xenstored: str) -> None:
    with Client(xenstored) as c:
        c.write("/counter", "0")
    calls = []

    def bump(t: Transaction) -> None:
        calls.append(1)
        value = int(t.read("/counter"))
        t.write("/counter", str(value + 1))

    def worker() -> None:
        with Client(xenstored) as c:
            for _ in range(25):
                c.transaction(bump)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Client(xenstored) as c:
        assert c.read("/counter") == b"75"
    assert len(calls) >= 75


def test_transaction_aborts_on_exception(xenstored: str) -> None:
    with Client(xenstored) as c:

        def fail(t: Transaction) -> None:
            t.write("/aborted", "1")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            c.transaction(fail)
        assert not c.exists("/aborted")


def test_oversized_message_drops_only_that_client(xenstored: str) -> None:
    with Client(xenstored) as good, socket.socket(socket.AF_UNIX) as bad:
        good.write("/still", "here")
        bad.connect(xenstored)
        bad.sendall(struct.pack("<IIII", Op.WRITE, 1, 0, 5000) + bytes(5000))
        bad.settimeout(5)
        assert bad.recv(100) == b""  # closed, as Xen's xenstored does
        assert good.read("/still") == b"here"


def test_garbage_gets_error_replies(xenstored: str) -> None:
    with socket.socket(socket.AF_UNIX) as s, Client(xenstored) as good:
        s.connect(xenstored)
        s.sendall(struct.pack("<IIII", 200, 9, 0, 3) + b"abc")
        s.sendall(struct.pack("<IIII", Op.READ, 10, 0, 2) + b"/x")
        s.settimeout(5)
        data = b""
        while len(data) < 2 * 16 + len(b"ENOSYS\0") + len(b"EINVAL\0"):
            data += s.recv(4096)
        assert struct.unpack_from("<IIII", data, 0) == (Op.ERROR, 9, 0, 7)
        assert data[16:23] == b"ENOSYS\0"
        assert struct.unpack_from("<IIII", data, 23)[:2] == (Op.ERROR, 10)
        assert data[39:46] == b"EINVAL\0"
        assert good.is_domain_introduced(0)


async def _async_ops() -> None:
    async with SimMachine() as machine:
        xs = await machine.client()
        other = await machine.client()
        await xs.write("/as/a", "1")
        assert await xs.read("/as/a") == b"1"
        assert await xs.directory("/as") == ["a"]
        assert await xs.exists("/as/a")
        await xs.mkdir("/as/m")
        await xs.set_perms("/as/m", (Perm("b", 2),))
        assert await xs.get_perms("/as/m") == (Perm("b", 2),)
        await xs.rm("/as/m")
        assert not await xs.exists("/as/m")
        assert await xs.get_domain_path(3) == "/local/domain/3"
        await xs.introduce(3, 1, 1)
        assert await xs.is_domain_introduced(3)
        await xs.release(3)
        queue = await xs.watch("/as")
        assert (await queue.get()).path == "/as"
        await other.write("/as/b", "2")
        assert (await queue.get()).path == "/as/b"
        waiter = asyncio.create_task(xs.wait_for("/as/flag", lambda v: v == b"go"))
        await other.write("/as/flag", "wait")
        await asyncio.sleep(0.01)
        assert not waiter.done()
        await other.write("/as/flag", "go")
        assert await waiter == b"go"
        with pytest.raises(XsError):
            await xs.read("/missing")

        await xs.write("/ac", "0")
        calls = []

        async def bump(t: AsyncTransaction) -> None:
            calls.append(1)
            value = int(await t.read("/ac"))
            await asyncio.sleep(0)
            await t.write("/ac", str(value + 1))

        async def worker(client: AsyncClient) -> None:
            for _ in range(20):
                await client.transaction(bump)

        await asyncio.gather(worker(xs), worker(other))
        assert await xs.read("/ac") == b"40"
        assert len(calls) > 40, "interleaved transactions must have conflicted"


def test_async_client() -> None:
    run(_async_ops())


def test_device_transport(xenstored: str) -> None:
    """The transport of /dev/xen/xenbus (a descriptor carrying whole messages), here
    over a descriptor connected to our daemon: the same client operations work."""
    import socket as socket_module

    from mirage.core.testing import run
    from mirage.xen.xenstore import AsyncClient
    from mirage.xen.xenstore._device import DeviceTransport, is_device

    assert not is_device(xenstored) and is_device("/dev/null")

    async def body() -> None:
        sock = socket_module.socket(socket_module.AF_UNIX)
        sock.connect(xenstored)
        transport = DeviceTransport(sock.detach())
        xs = AsyncClient(transport, transport)
        await xs.write("/dev/t", "1")
        assert await xs.read("/dev/t") == b"1"
        events = await xs.watch("/dev")
        assert (await events.get()).path == "/dev"
        await xs.write("/dev/u", "x" * 3000)  # more than one small write
        assert (await events.get()).path == "/dev/u"
        assert await xs.read("/dev/u") == b"x" * 3000
        await xs.close()

    run(body(), 30)
