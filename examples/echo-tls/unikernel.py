"""The echo unikernel: every TCP connection gets back what it sends."""

import asyncio
import logging

from mirage.core.types import Console, Flow, Stack

log = logging.getLogger("echo")


async def start(stack: Stack, console: Console, port: int) -> None:
    async def echo(flow: Flow) -> None:
        while data := await flow.read():
            await flow.write(data)
        await flow.shutdown()

    await stack.tcp.listen(port, echo)
    await console.log(f"echo: listening on TCP port {port}")
    await asyncio.Event().wait()  # serve until stopped
