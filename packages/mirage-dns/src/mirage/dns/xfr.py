"""Zone transfer in over a mirage ``Stack``: ``axfr(stack, server, port, origin)``."""

from __future__ import annotations

import asyncio
import random

from mirage.core.types import Stack

from ._axfr import AxfrReader
from ._errors import ResolveError
from ._name import Name
from ._zone import Zone

__all__ = ["axfr"]

MAX_MESSAGE = 65535


async def axfr(
    stack: Stack, server: str, port: int, origin: Name | str, *, timeout: float = 30.0
) -> Zone:
    """Transfer ``origin`` from ``server`` over TCP and return it as a checked zone."""
    if isinstance(origin, str):
        origin = Name.from_text(origin if origin.endswith(".") else origin + ".")
    reader = AxfrReader(origin, ident=random.getrandbits(16))

    async def run() -> None:
        flow = await stack.tcp.connect(server, port)
        try:
            await flow.write(len(reader.query).to_bytes(2, "big") + reader.query)
            buf = bytearray()
            while not reader.done:
                chunk = await flow.read()
                if not chunk:
                    raise ResolveError("connection closed before the end of the transfer")
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                    size = int.from_bytes(buf[:2], "big")
                    message = bytes(buf[2 : 2 + size])
                    del buf[: 2 + size]
                    if reader.receive(message):
                        break
        finally:
            await flow.close()

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise ResolveError(f"AXFR of {origin} from {server}:{port} timed out") from None
    return Zone.from_records(reader.records, origin, source=f"AXFR from {server}:{port}")
