"""Zone transfer in over a mirage ``Stack``: ``axfr(stack, server, port, origin)``
and ``ixfr(stack, server, port, zone)`` (RFC 1995, falling back to what the server
sends: the deltas, the whole zone, or nothing new)."""

from __future__ import annotations

import asyncio
import random
from typing import Protocol

from mirage.core.types import Stack

from ._axfr import AxfrReader
from ._errors import ResolveError
from ._ixfr import IxfrReader
from ._name import Name
from ._zone import Zone

__all__ = ["axfr", "ixfr", "transfer"]

MAX_MESSAGE = 65535


async def axfr(
    stack: Stack, server: str, port: int, origin: Name | str, *, timeout: float = 30.0
) -> Zone:
    """Transfer ``origin`` from ``server`` over TCP and return it as a checked zone."""
    if isinstance(origin, str):
        origin = Name.from_text(origin if origin.endswith(".") else origin + ".")
    reader = AxfrReader(origin, ident=random.getrandbits(16))
    await transfer(stack, server, port, reader, timeout=timeout, what=f"AXFR of {origin}")
    return Zone.from_records(reader.records, origin, source=f"AXFR from {server}:{port}")


class _Reader(Protocol):
    query: bytes
    done: bool

    def receive(self, data: bytes) -> bool: ...


async def transfer(
    stack: Stack, server: str, port: int, reader: _Reader, *, timeout: float, what: str
) -> None:
    """Send the reader's query over TCP and feed it response messages until done."""

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
        raise ResolveError(f"{what} from {server}:{port} timed out") from None


async def ixfr(
    stack: Stack, server: str, port: int, zone: Zone, *, timeout: float = 30.0
) -> tuple[Zone, str]:
    """The zone brought up to date from ``server``, and how: "incremental", "full"
    (the server sent the whole zone) or "uptodate"."""
    reader = IxfrReader(zone, ident=random.getrandbits(16))
    await transfer(stack, server, port, reader, timeout=timeout, what=f"IXFR of {zone.origin}")
    assert reader.mode is not None
    if reader.mode == "axfr":
        return await axfr(stack, server, port, zone.origin, timeout=timeout), "full"
    return reader.apply(), reader.mode
