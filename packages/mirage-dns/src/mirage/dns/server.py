"""The asyncio driver of the authoritative server, over a mirage ``Stack``.

UDP: each datagram to the port is handed to :class:`Authority` and the answer sent
back from the same port. TCP (RFC 7766): each connection carries length-prefixed
queries, answered in order as they arrive (pipelining); a connection idle for
``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from mirage.core.types import Flow, FlowClosed, Stack

from ._server import CACHE_SIZE, Authority
from ._tsig import TsigKey
from ._zone import Zone
from ._zonefile import read_zone

__all__ = ["DnsServer", "load_zones", "serve"]

log = logging.getLogger("mirage.dns.server")

IDLE_TIMEOUT = 10.0
MAX_TCP_BUFFER = 1 << 20


def load_zones(paths: Iterable[str | Path]) -> list[Zone]:
    """Read and check each zone file (origin: the SOA's owner)."""
    return [Zone.from_records(read_zone(path), source=str(path)) for path in paths]


class DnsServer:
    """An :class:`Authority` listening on one port of a stack, UDP and TCP."""

    def __init__(
        self,
        stack: Stack,
        authority: Authority,
        port: int = 53,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.stack = stack
        self.authority = authority
        self.port = port
        self.idle_timeout = idle_timeout
        self._outbox: deque[tuple[str, int, bytes]] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())
        await self.stack.udp.listen(self.port, self._datagram)
        await self.stack.tcp.listen(self.port, self._connection)

    async def stop(self) -> None:
        await self.stack.udp.unlisten(self.port)
        await self.stack.tcp.unlisten(self.port)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    def _datagram(self, src: str, src_port: int, payload: bytes) -> None:
        # Synchronous, so the stack starts no task per datagram; one writer task
        # sends what is queued.
        replies = self.authority.handle(payload, tcp=False, client=src, now=time.time())
        if replies:
            self._outbox.extend((src, src_port, reply) for reply in replies)
            self._wake.set()

    async def _write_loop(self) -> None:
        outbox = self._outbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            while outbox:
                dst, dst_port, reply = outbox.popleft()
                try:
                    await self.stack.udp.write(dst, dst_port, reply, src_port=self.port)
                except OSError as exc:
                    log.debug("UDP answer to %s:%d not sent: %s", dst, dst_port, exc)

    async def _connection(self, flow: Flow) -> None:
        buf = bytearray()
        client = ""
        peer = getattr(flow, "peer", None)
        if isinstance(peer, tuple) and peer:
            client = str(peer[0])
        try:
            while True:
                try:
                    data = await asyncio.wait_for(flow.read(), self.idle_timeout)
                except TimeoutError:
                    break
                if not data:
                    break
                buf += data
                if len(buf) > MAX_TCP_BUFFER:
                    break
                while len(buf) >= 2:
                    length = int.from_bytes(buf[:2], "big")
                    if len(buf) < 2 + length:
                        break
                    query = bytes(buf[2 : 2 + length])
                    del buf[: 2 + length]
                    replies = self.authority.handle(query, tcp=True, client=client, now=time.time())
                    if replies:
                        await flow.writev([len(r).to_bytes(2, "big") + r for r in replies])
        except FlowClosed:
            pass
        finally:
            with contextlib.suppress(Exception):
                await flow.close()


async def serve(
    stack: Stack,
    zone_files: Iterable[str | Path],
    port: int = 53,
    *,
    tsig_keys: Iterable[TsigKey] = (),
    cache_size: int = CACHE_SIZE,
) -> DnsServer:
    """Load the zone files and start answering on ``port``; returns the server.

    Requests signed with one of ``tsig_keys`` get signed answers, and UPDATEs signed
    with one of them are applied (unsigned UPDATEs are refused).
    """
    authority = Authority(load_zones(zone_files), tsig_keys=tsig_keys, cache_size=cache_size)
    server = DnsServer(stack, authority, port)
    await server.start()
    return server
