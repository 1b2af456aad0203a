"""mirage-unix's devices against the conformance kit of mirage-core."""

from __future__ import annotations

import io

from mirage.core.testing import (
    ClockTests,
    ConsoleTests,
    FlowTests,
    RandomTests,
    SleepTests,
    StackTests,
)
from mirage.core.types import Clock, Console, Flow, Random, Sleep, Stack
from mirage.unix.console import UnixConsole
from mirage.unix.random import UnixRandom
from mirage.unix.stack import SocketFlow, SocketStack
from mirage.unix.time import UnixClock, UnixSleep


class TestUnixSleep(SleepTests):
    async def make_sleep(self) -> Sleep:
        return await UnixSleep.connect()


class TestUnixClock(ClockTests):
    async def make_clock(self) -> Clock:
        return await UnixClock.connect()


class TestUnixRandom(RandomTests):
    async def make_random(self) -> Random:
        return await UnixRandom.connect()


class TestUnixConsole(ConsoleTests):
    async def make_console(self) -> Console:
        return await UnixConsole.connect(output=io.BytesIO(), input=io.BytesIO(b""))

    async def console_output(self, console: Console) -> bytes:
        assert isinstance(console, UnixConsole)
        out = console._out
        assert isinstance(out, io.BytesIO)
        return out.getvalue()


class TestSocketStack(StackTests):
    async def make_stack(self) -> Stack:
        return await SocketStack.connect(ipv4="127.0.0.1")

    def peer_address(self) -> str:
        return "127.0.0.1"


class TestSocketFlow(FlowTests):
    """Two ends of a TCP connection through the host's loopback."""

    async def make_flow_pair(self) -> tuple[Flow, Flow]:
        import asyncio

        stack = await SocketStack.connect(ipv4="127.0.0.1")
        accepted: asyncio.Future[Flow] = asyncio.get_running_loop().create_future()
        done = asyncio.Event()

        async def handler(flow: Flow) -> None:
            accepted.set_result(flow)
            await done.wait()  # keep the flow open until the test ends

        await stack.tcp.listen(0, handler)
        port = stack.tcp.listening_port(0)
        client = await stack.tcp.connect("127.0.0.1", port)
        server = await accepted
        return client, server


def test_abort_resets_the_connection() -> None:
    import asyncio

    async def scenario() -> bytes:
        stack = await SocketStack.connect(ipv4="127.0.0.1")
        accepted: asyncio.Future[Flow] = asyncio.get_running_loop().create_future()

        async def handler(flow: Flow) -> None:
            accepted.set_result(flow)
            await asyncio.sleep(1)

        await stack.tcp.listen(0, handler)
        client = await stack.tcp.connect("127.0.0.1", stack.tcp.listening_port(0))
        server = await accepted
        assert isinstance(server, SocketFlow)
        server.abort()
        data = await client.read()
        await stack.disconnect()
        return data

    assert asyncio.run(scenario()) == b""
